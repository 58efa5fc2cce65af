// Where signing credentials come from (environment -> container endpoint -> SDK default chain), cached
// and refreshed before they expire. SDK providers are imported only when that source is the one in use.

import { type Clock, monotonicMs } from '../clock.ts';
import type { Logger } from '../log.ts';
import { fetchContainerCredentials } from './container-credentials.ts';
import { FileCredentials } from './credentials-file.ts';
import { AwsCallError, type AwsConfig, type AwsCredentials } from './types.ts';

export type { AwsCredentials };

export interface CredentialSource {
  /** For logs: `environment`, `container`, `default chain`, `credentials file` or `static`. */
  readonly name: string;
  /**
   * Current credentials; fetches or refreshes when needed. With `since`, only credentials whose fetch
   * started at or after that time (Date.now ms) will do (the SnapStart restore window). Rejects with
   * AwsCallError (CredentialsProviderError).
   */
  get(opts?: { since?: number }): Promise<AwsCredentials>;
  /**
   * Forgets the cached credentials (the service called them expired, or a SnapStart restore). A fetch in
   * flight at that moment still answers its own callers but is never cached. True when a new fetch may help.
   */
  invalidate(): boolean;
  /** Whether usable credentials are in hand now, without fetching anything (GET /ready). */
  held?(): boolean;
}

const FIVE_MINUTES = 5 * 60_000;
/** A fetch in flight longer than this may be hung: callers no longer join it, a new fetch starts. */
export const FETCH_JOIN_LIMIT_MS = 10_000;

/** Credentials that never change (AWS_ACCESS_KEY_ID & co, tests). */
export function staticCredentials(creds: AwsCredentials, name = 'static'): CredentialSource {
  const ready = Promise.resolve(creds);
  return { name, get: () => ready, invalidate: () => false, held: () => true };
}

interface Cached {
  creds: AwsCredentials;
  /** When the fetch that produced them started. */
  fetchedAt: number;
  /** From here on a background refresh starts. */
  refreshAt: number;
  /** From here on callers wait for fresh credentials. */
  usableUntil: number;
  /** Expiration minus fetch time (ms); Infinity for long-term keys. */
  lifetime: number;
}

/**
 * Caches what `fetch` returns. Refresh starts when less than min(5 min, half the lifetime) remains and
 * runs in the background while the current credentials still have min(10 s, a tenth of the lifetime)
 * left; after that callers wait. Concurrent fetches are coalesced into one.
 */
export class RefreshingCredentials implements CredentialSource {
  private cached: Cached | undefined;
  private inflight: { promise: Promise<AwsCredentials>; startedAt: number; startedTick: number } | undefined;
  private lastFailure = Number.NEGATIVE_INFINITY;
  private loaded = false;
  /** Bumped by invalidate(): a fetch started before it never lands in `cached` after it. */
  private generation = 0;

  constructor(
    readonly name: string,
    /** `since`: the credentials this fetch signs with must be fetched at or after it (a role's AssumeRole). */
    private readonly fetch: (forceRefresh: boolean, since?: number) => Promise<AwsCredentials>,
    private readonly log: Logger,
    /** Wall time (ms), against the credentials' expiration and `since`. */
    private readonly now: () => number = Date.now,
    /** Monotonic time (ms), for how long a fetch has been in flight: a wall-clock step changes nothing. */
    private readonly elapsed: () => number = monotonicMs,
  ) {}

  get(opts?: { since?: number }): Promise<AwsCredentials> {
    const since = opts?.since ?? Number.NEGATIVE_INFINITY;
    const c = this.cached;
    if (c && c.fetchedAt >= since) {
      const t = this.now();
      if (t < c.refreshAt) return Promise.resolve(c.creds);
      if (t < c.usableUntil) {
        this.refreshInBackground(t, c);
        return Promise.resolve(c.creds);
      }
    }
    return this.refresh(since);
  }

  held(): boolean {
    const c = this.cached;
    return c !== undefined && this.now() < c.usableUntil;
  }

  invalidate(): boolean {
    this.cached = undefined;
    this.inflight = undefined;
    this.generation++;
    return true;
  }

  private refresh(since = Number.NEGATIVE_INFINITY): Promise<AwsCredentials> {
    const started = this.now();
    const tick = this.elapsed();
    const inflight = this.inflight;
    if (inflight && inflight.startedAt >= since && tick - inflight.startedTick < FETCH_JOIN_LIMIT_MS) {
      return inflight.promise;
    }
    const generation = this.generation;
    // Once we have had credentials, a refresh must bypass any cache inside the provider itself.
    const p = this.fetch(this.loaded, Number.isFinite(since) ? since : undefined).then(
      (creds) => {
        this.loaded = true;
        // Fetched before an invalidate(): good for the callers that asked then, never kept.
        if (generation !== this.generation) return creds;
        // Two fetches can overlap (a `since` read does not join an older one): the later-started wins.
        if (this.cached && this.cached.fetchedAt > started) return creds;
        this.cached = windowFor(creds, started);
        this.log.debug('credentials loaded', {
          source: this.name,
          expires_in_s: creds.expiration
            ? Math.round((creds.expiration.getTime() - started) / 1000)
            : undefined,
        });
        return creds;
      },
      (err: unknown) => {
        this.lastFailure = this.now();
        throw err;
      },
    );
    this.inflight = { promise: p, startedAt: started, startedTick: tick };
    const clear = () => {
      if (this.inflight?.promise === p) this.inflight = undefined;
    };
    p.then(clear, clear);
    return p;
  }

  private refreshInBackground(t: number, c: Cached): void {
    if (this.inflight && this.elapsed() - this.inflight.startedTick < FETCH_JOIN_LIMIT_MS) return;
    // After a failed refresh, wait a little before the next try so that every miss does not pay for it.
    if (t - this.lastFailure < Math.min(10_000, Math.max(c.lifetime / 10, 100))) return;
    this.refresh().catch((err: unknown) => {
      this.log.warn('credentials refresh failed; still using the current ones', {
        source: this.name,
        code: err instanceof AwsCallError ? err.code : 'Error',
      });
    });
  }
}

function windowFor(creds: AwsCredentials, fetchedAt: number): Cached {
  const exp = creds.expiration?.getTime();
  if (exp === undefined || Number.isNaN(exp)) {
    const never = Number.POSITIVE_INFINITY;
    return { creds, fetchedAt, refreshAt: never, usableUntil: never, lifetime: never };
  }
  const lifetime = Math.max(0, exp - fetchedAt);
  return {
    creds,
    fetchedAt,
    refreshAt: exp - Math.min(FIVE_MINUTES, lifetime / 2),
    usableUntil: exp - Math.min(10_000, lifetime / 10),
    lifetime,
  };
}

const NETWORK_HINT =
  /ECONNREFUSED|ECONNRESET|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|EAI_AGAIN|ENOTFOUND|EPIPE|socket hang up|timed? ?out|TimeoutError/i;

/** Any provider failure -> AwsCallError with a message that holds no key, token or token file content. */
export function credentialsError(
  source: string,
  err: unknown,
  secrets: readonly (string | undefined)[] = [],
): AwsCallError {
  let detail = err instanceof Error ? err.message : String(err);
  for (const s of secrets) if (s) detail = detail.split(s).join('(redacted)');
  detail = detail.replace(/\s+/g, ' ').trim().slice(0, 300);
  const kind = NETWORK_HINT.test(detail) ? 'network' : 'aws';
  return new AwsCallError(
    'CredentialsProviderError',
    `could not load AWS credentials from the ${source}${detail ? `: ${detail}` : ''}`,
    kind,
  );
}

export interface CredentialOptions {
  /** Per-request timeout of the container credentials endpoint (ms). Default 1000. */
  containerTimeoutMs?: number;
  /** Retries against the container credentials endpoint. Default 2. */
  containerRetries?: number;
  /**
   * The agent the SDK chain's own AWS calls (STS for web identity, SSO) go through: pscache's, when a
   * proxy or AWS_CA_BUNDLE is configured. IMDS and the container endpoint are always reached directly.
   */
  sdkHttpsAgent?: () => Promise<import('node:http').Agent>;
  /** The proxy's credentials, scrubbed from what the SDK chain's failures say (its STS calls go through it). */
  proxySecrets?: readonly string[];
  now?: () => number;
  /** Timers of the credentials file's checks. */
  clock?: Clock;
}

/** Picks the credential source the configuration calls for. Nothing is fetched or imported until first use. */
export function createCredentialSource(
  aws: AwsConfig,
  log: Logger,
  opts: CredentialOptions = {},
): CredentialSource {
  // As in the provider, a configured file replaces every other source.
  if (aws.credentialsFile !== undefined) {
    return new FileCredentials({
      path: aws.credentialsFile,
      profile: aws.profile,
      log,
      ...(opts.clock ? { clock: opts.clock } : {}),
    });
  }
  if (aws.envCredentials) {
    const { accessKeyId, secretAccessKey, sessionToken } = aws.envCredentials;
    return staticCredentials(
      { accessKeyId, secretAccessKey, ...(sessionToken ? { sessionToken } : {}) },
      'environment',
    );
  }
  const container = aws.containerCredentials;
  if (container) {
    const source = 'container credentials endpoint';
    return new RefreshingCredentials(
      'container',
      async () => {
        let creds: AwsCredentials;
        try {
          creds = await fetchContainerCredentials(container, {
            timeoutMs: opts.containerTimeoutMs ?? 1000,
            retries: opts.containerRetries ?? 2,
          });
        } catch (err) {
          throw credentialsError(source, err, [container.authToken]);
        }
        return pick(creds);
      },
      log,
      opts.now,
    );
  }
  const source = 'default credential chain (profile, web identity, IMDS)';
  let provider: ((o?: { forceRefresh?: boolean }) => Promise<AwsCredentials>) | undefined;
  return new RefreshingCredentials(
    'default chain',
    async (forceRefresh) => {
      let creds: AwsCredentials;
      try {
        if (!provider) {
          let mod: typeof import('@aws-sdk/credential-provider-node');
          try {
            // require in the bundle (CommonJS): a dynamic import() is lost when the bundle is compiled from
            // a V8 code cache (bin/pscache.cjs, the layers' start.cjs); import() under tsx (ES modules).
            mod =
              typeof require === 'function'
                ? require('@aws-sdk/credential-provider-node')
                : await import('@aws-sdk/credential-provider-node');
          } catch {
            // An optional peer dependency, absent from a default install and from the Lambda layer (never
            // needed there): say how to get it, or what to set instead.
            throw new Error(
              'the SDK default chain is not installed; run `npm install @aws-sdk/credential-provider-node` next to pscache, or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_CONTAINER_CREDENTIALS_FULL_URI',
            );
          }
          const httpsAgent = await opts.sdkHttpsAgent?.();
          provider = mod.defaultProvider({
            ...(aws.profile !== undefined ? { profile: aws.profile } : {}),
            // The shorthand smithy clients take for NodeHttpHandler's options.
            ...(httpsAgent ? { clientConfig: { requestHandler: { httpsAgent } } } : {}),
            logger: sdkLogger(log),
          });
        }
        creds = await provider(forceRefresh ? { forceRefresh: true } : undefined);
      } catch (err) {
        throw credentialsError(source, err, opts.proxySecrets);
      }
      return pick(creds);
    },
    log,
    opts.now,
  );
}

/** Keeps the fields we sign with and drops the SDK's extras ($source and such). */
function pick(c: AwsCredentials): AwsCredentials {
  return {
    accessKeyId: c.accessKeyId,
    secretAccessKey: c.secretAccessKey,
    ...(c.sessionToken ? { sessionToken: c.sessionToken } : {}),
    ...(c.expiration ? { expiration: c.expiration } : {}),
  };
}

/** The SDK providers log warnings with console.warn unless given a logger; route them to ours. */
function sdkLogger(log: Logger) {
  const text = (args: unknown[]) => args.map(String).join(' ').replace(/\s+/g, ' ').trim().slice(0, 300);
  return {
    trace: () => {},
    debug: () => {},
    info: () => {},
    warn: (...args: unknown[]) => log.warn(`aws sdk: ${text(args)}`),
    error: (...args: unknown[]) => log.error(`aws sdk: ${text(args)}`),
  };
}
