// What the AWS side (dispatch.ts) and the control API (control.ts) share of a running emulator.
import type { FaultTable, RateLimiter } from './faults.ts';
import type { DenyList, RoleAccess } from './policy.ts';
import type { SigV4Verifier } from './sigv4.ts';
import type { FakeKms, Regions } from './state.ts';
import type { StsState } from './sts.ts';
import type { CallRecord, Emulator, EmulatorOptions } from './types.ts';

export interface Core extends Emulator {
  readonly opts: EmulatorOptions;
  /** Epoch ms (the clock option, else Date.now). */
  clock(): number;
  /** True once close() began: work in flight stops answering. */
  readonly closed: boolean;
  readonly regions: Regions;
  readonly kms: FakeKms;
  readonly denyList: DenyList;
  readonly roleAccess: RoleAccess;
  readonly faults: FaultTable;
  readonly limiter: RateLimiter;
  readonly verifier: SigV4Verifier;
  readonly sts: StsState;
  count(key: string): void;
  record(call: CallRecord): void;
  /** A delay that close() cuts short. */
  sleep(ms: number): Promise<void>;
  /** The container credentials endpoint: a status and the document to answer. */
  mintContainerCredentials(authorization: string | string[] | undefined): [number, unknown];
}
