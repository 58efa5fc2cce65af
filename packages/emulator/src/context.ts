// What an operation handler is given, who is calling, and the IAM-style denial the services answer with.
import { AwsError, type Input } from './errors.ts';
import type { ResourcePolicy } from './policy.ts';
import type { FakeKms, State } from './state.ts';
import type { StsState } from './sts.ts';

/** A session minted by AssumeRole. */
export interface RoleSession {
  roleArn: string;
  /** arn:aws:sts::ACCOUNT:assumed-role/NAME/SESSION */
  assumedRoleArn: string;
  /** AROA...:SESSION */
  assumedRoleId: string;
  /** The role's account. */
  accountId: string;
  /** Epoch ms. */
  expiresAt: number;
}

/** Who signed a request. */
export interface Caller {
  /** The role ARN for a role session, else the access key id; null when unsigned. */
  principal: string | null;
  /** The identity ARN named in AccessDenied messages. */
  arn: string;
  session?: RoleSession;
}

export interface OpContext {
  /** The parameters and secrets of the Region the request was signed for. */
  state: State;
  kms: FakeKms;
  /** What this caller may not read. */
  deny: ResourcePolicy;
  caller: Caller;
  sts: StsState;
  /** Epoch ms at which the request was handled. */
  now: number;
  /** Bare operation name, e.g. GetParameter. */
  op: string;
}

/** An operation: returns the response document or throws AwsError. */
export type Handler = (input: Input, ctx: OpContext) => unknown;

/** The role every emulated call appears to come from, unless signed by a role session (AccessDenied messages, history). */
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
    `User: ${ctx.caller.arn} is not authorized to perform: ${action}${on} because no identity-based policy allows the ${action} action`,
    400,
    messageKey,
  );
}

/** Epoch seconds with a milliseconds fraction, as the JSON 1.1 protocol sends timestamps. */
export const epoch = (ms: number): number => ms / 1000;
