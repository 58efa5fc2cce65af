// What an operation handler is given, and the IAM-style denial both services answer with.
import { AwsError, type Input } from './errors.ts';
import type { DenyList } from './policy.ts';
import type { FakeKms, State } from './store.ts';

export interface OpContext {
  state: State;
  kms: FakeKms;
  deny: DenyList;
  /** Epoch ms at which the request was handled. */
  now: number;
  /** Bare operation name, e.g. GetParameter. */
  op: string;
}

/** An operation: returns the response document or throws AwsError. */
export type Handler = (input: Input, ctx: OpContext) => unknown;

/** The role every emulated call appears to come from (used in AccessDenied messages and history). */
export const principalArn = (accountId: string): string =>
  `arn:aws:sts::${accountId}:assumed-role/emulator/pscache`;

export function accessDenied(
  ctx: OpContext,
  action: string,
  resource: string | undefined,
  messageKey: 'message' | 'Message',
): AwsError {
  const on = resource === undefined ? '' : ` on resource: ${resource}`;
  return new AwsError(
    'AccessDeniedException',
    `User: ${principalArn(ctx.state.accountId)} is not authorized to perform: ${action}${on} because no identity-based policy allows the ${action} action`,
    400,
    messageKey,
  );
}

/** Epoch seconds with a milliseconds fraction, as the JSON 1.1 protocol sends timestamps. */
export const epoch = (ms: number): number => ms / 1000;
