// Whether pscache can serve, said early and plainly: the credentials resolved once at start (a failure is
// one WARN line naming the source and the fix), validate_credentials (STS GetCallerIdentity before serving,
// bounded), and the readiness answer of GET /ready: credentials and upstream reachability, never a name or
// a value. GET /ping stays what it was: alive.

import type { CredentialSource } from './aws/credentials.ts';
import type { Upstream } from './aws/index.ts';
import { AwsCallError, type CallObserver } from './aws/types.ts';
import { type Clock, systemClock } from './clock.ts';
import type { Logger } from './log.ts';

/** What to do when a source gives no credentials, by CredentialSource.name. */
const FIXES: Record<string, string> = {
  environment: 'check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN',
  container:
    'check the task role (ECS) or the pod identity association (EKS) behind AWS_CONTAINER_CREDENTIALS_FULL_URI / _RELATIVE_URI',
  'default chain':
    'give pscache credentials: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE, AWS_ROLE_ARN with AWS_WEB_IDENTITY_TOKEN_FILE (EKS IRSA), credentials_file_path, or an instance profile (EC2)',
  'credentials file':
    'write the credentials file: a [default] (or AWS_PROFILE) section with aws_access_key_id, aws_secret_access_key and aws_session_token',
};

export const credentialsFix = (source: string): string =>
  FIXES[source] ?? 'check the credentials pscache is given';

const codeOf = (e: unknown): string => (e instanceof AwsCallError ? e.code : 'Error');

/** validate_credentials refused the credentials: start-up stops (exit 1) with this message. */
export class CredentialsRefused extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CredentialsRefused';
  }
}

/** Longest validate_credentials may hold start-up: every STS attempt's ceiling, the backoffs, a credentials fetch. */
export const VALIDATE_DEADLINE_MS = 40_000;

/** Throttling, 5xx, timeouts, connection failures: worth no refusal when ignore_transient_errors is true. */
const isTransient = (e: AwsCallError) => e.kind !== 'aws';

export interface ValidateOptions {
  /** The provider's ignore_transient_errors (default true): a transient failure is a WARN, not a stop. */
  ignoreTransientErrors: boolean;
  log: Logger;
  deadlineMs?: number;
  clock?: Clock;
}

/**
 * validate_credentials, as the provider does it: STS GetCallerIdentity with the credentials pscache would
 * sign with. A refusal (no credentials, unknown or expired keys, a bad signature) throws CredentialsRefused;
 * so does a transient failure, unless ignore_transient_errors. Never waits past the deadline (a transient
 * failure). Skipped for credentials_file_path, as the provider skips it.
 */
export async function validateCredentials(upstream: Upstream, opts: ValidateOptions): Promise<void> {
  const { log } = opts;
  const source = upstream.credentials.name;
  if (source === 'credentials file') {
    log.info('validate_credentials skipped: the credentials come from credentials_file_path', { source });
    return;
  }
  const clock = opts.clock ?? systemClock;
  const deadline = opts.deadlineMs ?? VALIDATE_DEADLINE_MS;
  let timer: { cancel(): void } | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = clock.setTimeout(
      () => reject(new AwsCallError('TimeoutError', `no answer within ${deadline / 1000} s`, 'timeout')),
      deadline,
    );
  });
  try {
    const who = await Promise.race([upstream.callerIdentity(), late]);
    log.info('validate_credentials: the credentials are valid', { source, account: who.account });
  } catch (e) {
    if (!(e instanceof AwsCallError)) throw e;
    const what = `validate_credentials: STS GetCallerIdentity failed with the credentials of the ${source}: ${e.code}: ${e.message}`;
    if (isTransient(e) && opts.ignoreTransientErrors) {
      log.warn(`${what}; serving anyway (the failure is transient and ignore_transient_errors is true)`, {
        source,
        code: e.code,
      });
      return;
    }
    throw new CredentialsRefused(`${what}; ${credentialsFix(source)}`);
  } finally {
    timer?.cancel();
  }
}

export interface Readiness {
  ready: boolean;
  /** `ok`, `failed` (the source gave none), or `pending` (still being fetched). */
  credentials: 'ok' | 'failed' | 'pending';
  /** From the latest upstream attempt of the last minute: `reachable`, `unreachable`, or `unknown` (none). */
  upstream: 'reachable' | 'unreachable' | 'unknown';
}

/** An attempt this old says nothing about upstream now. */
const EVIDENCE_MS = 60_000;
/** How long /ready waits for credentials being fetched before it answers `pending`. */
export const READY_WAIT_MS = 1000;
/**
 * After credentials failed, /ready reports the failure without asking the source again for this long,
 * doubling after each failure up to CREDENTIALS_RETRY_MAX_MS: probes cost at most one fetch (with its
 * retries) per period however often they come, whoever sends them (no token is needed for /ready).
 */
export const CREDENTIALS_RETRY_MIN_MS = 5000;
export const CREDENTIALS_RETRY_MAX_MS = 60_000;

/** Readiness from what pscache sees anyway: the credentials source and the outcome of upstream attempts. */
export class Health {
  private last: { reachable: boolean; at: number } | undefined;
  private readonly clock: Clock;
  /** The fetch /ready (or the start-up check) started, while it runs. */
  private checking: Promise<boolean> | undefined;
  /** The last failure seen: no fetch for /ready before `retryAt`. */
  private failed: { retryAt: number; backoffMs: number } | undefined;

  constructor(
    private readonly credentials: CredentialSource,
    clock?: Clock,
  ) {
    this.clock = clock ?? systemClock;
  }

  /** Told of every upstream attempt: connection failures and timeouts mean unreachable, any answer reachable. */
  readonly observer: CallObserver = (e) => {
    this.last = { reachable: e.outcome !== 'network' && e.outcome !== 'timeout', at: this.clock.now() };
  };

  /**
   * Fetches the credentials once without waiting for a read to need them (at start). A failure is one
   * WARN line: the source tried, why, and the fix; reads go on failing with 403 until the source gives
   * credentials, and /ready reports it without asking again before the back-off is over.
   */
  checkAtStart(log: Logger): Promise<void> {
    return this.check((e) => {
      log.warn(
        `no AWS credentials: ${e instanceof Error ? e.message : String(e)}; reads fail (403) until fixed`,
        {
          source: this.credentials.name,
          code: codeOf(e),
          fix: credentialsFix(this.credentials.name),
        },
      );
    }).then((ok) => {
      if (ok) log.debug('credentials ready', { source: this.credentials.name });
    });
  }

  /** One fetch through the source (joined while it runs); records a failure and its back-off. */
  private check(onFailure?: (e: unknown) => void): Promise<boolean> {
    this.checking ??= this.credentials.get().then(
      () => {
        this.failed = undefined;
        this.checking = undefined;
        return true;
      },
      (e: unknown) => {
        const now = this.clock.now();
        const backoffMs =
          this.failed === undefined
            ? CREDENTIALS_RETRY_MIN_MS
            : Math.min(CREDENTIALS_RETRY_MAX_MS, this.failed.backoffMs * 2);
        this.failed = { retryAt: now + backoffMs, backoffMs };
        this.checking = undefined;
        onFailure?.(e);
        return false;
      },
    );
    return this.checking;
  }

  /**
   * Credentials in hand (a read fetched them meanwhile, say) are `ok` at no cost; after a failure, within
   * its back-off, `failed` without asking the source; otherwise one fetch, joined by every probe meanwhile.
   */
  async readiness(waitMs = READY_WAIT_MS): Promise<Readiness> {
    let credentials: Readiness['credentials'];
    if (this.credentials.held?.()) {
      this.failed = undefined;
      credentials = 'ok';
    } else if (this.failed !== undefined && this.clock.now() < this.failed.retryAt) {
      credentials = 'failed';
    } else {
      credentials = await this.awaitCheck(waitMs);
    }
    const last = this.last;
    const upstream =
      last === undefined || this.clock.now() - last.at > EVIDENCE_MS
        ? 'unknown'
        : last.reachable
          ? 'reachable'
          : 'unreachable';
    return { ready: credentials === 'ok' && upstream !== 'unreachable', credentials, upstream };
  }

  private async awaitCheck(waitMs: number): Promise<Readiness['credentials']> {
    let timer: { cancel(): void } | undefined;
    const pending = new Promise<'pending'>((resolve) => {
      timer = this.clock.setTimeout(() => resolve('pending'), waitMs);
    });
    const outcome = await Promise.race([
      this.check().then((ok) => (ok ? ('ok' as const) : ('failed' as const))),
      pending,
    ]);
    timer?.cancel();
    return outcome;
  }
}
