// The upstream layer as the rest of pscache sees it: signed clients per service, built from Config, under
// the base credentials or a role (roleArn), in the configured Region or another an ARN names.
import type { Logger } from '../log.ts';
import { AwsJsonClient, attemptTimeoutMs } from './client.ts';
import { type CredentialSource, createCredentialSource } from './credentials.ts';
import { FALLBACK_SIGNING_REGION, resolveEndpoint } from './endpoints.ts';
import { Principals } from './roles.ts';
import { assumeRole, queryProtocol } from './sts.ts';
import { Transports } from './transport.ts';
import type { AwsService, CallObserver, Service, UpstreamConfig } from './types.ts';

export { AwsJsonClient, type AwsJsonClientOptions, type CallOptions, MAX_RESPONSE_BYTES } from './client.ts';
export type { AwsCredentials, CredentialSource } from './credentials.ts';
export { batchGetSecretValue, batchGetSecretValueByFilters, getSecretValue } from './secretsmanager.ts';
export { getParameter, getParameters, getParametersByPath, parameterSelector } from './ssm.ts';
export { Transports } from './transport.ts';
export * from './types.ts';

/** Who a read is made as and where: a role (undefined: the base credentials), a Region (undefined: the configured one). */
export interface Via {
  roleArn?: string | undefined;
  region?: string | undefined;
}

export interface Upstream {
  /** The base credentials' clients in the configured Region. */
  ssm: AwsJsonClient;
  secretsmanager: AwsJsonClient;
  /**
   * The base credentials. `get()` at start-up fetches them ahead of the first miss; `invalidate()` also
   * forgets every role's (a SnapStart restore).
   */
  credentials: CredentialSource;
  /**
   * The client for a read of `service` as and where `via` says, made on first use. Throws RefusedError
   * for a role beyond max_roles or a Region beyond the limit; a role STS refuses fails the call with
   * AccessDeniedException.
   */
  client(service: Service, via?: Via): AwsJsonClient;
  /** The Region reads go to unless an ARN names another. */
  readonly region: string;
  /** The socket pools every client shares: one per endpoint host, under one cap. */
  readonly transports: Transports;
  /** STS GetCallerIdentity with the base credentials (validate_credentials): the account and ARN. */
  callerIdentity(): Promise<{ account: string | undefined; arn: string | undefined }>;
  /** Closes every socket pool. */
  close(): void;
}

// FALLBACK_SIGNING_REGION lives in endpoints.ts, which configuration reads without loading the clients.
export { FALLBACK_SIGNING_REGION };
/** Outbound sockets over every endpoint host together, unless configured. */
export const DEFAULT_MAX_OUTBOUND = 64;

export interface UpstreamOptions {
  /** Defaults to `pscache/<version>`. */
  userAgent?: string;
  /** Attempts per call; default 3. */
  maxAttempts?: number;
}

/**
 * Builds the clients. Nothing is fetched, imported or connected until the first call. loadConfig has
 * made sure each service has a Region or an endpoint override.
 */
export function createUpstream(
  config: UpstreamConfig,
  log: Logger,
  observer?: CallObserver,
  options: UpstreamOptions = {},
): Upstream {
  const aws = config.aws;
  const region = aws.region ?? FALLBACK_SIGNING_REGION;
  const transports = new Transports({
    maxConnections: config.maxConnections,
    maxTotal: config.maxOutboundConnections ?? DEFAULT_MAX_OUTBOUND,
    ...(config.network ? { network: config.network } : {}),
  });
  const routed = config.network?.proxy !== undefined || config.network?.caBundle !== undefined;
  const base = createCredentialSource(
    aws,
    log,
    routed
      ? {
          sdkHttpsAgent: async () => (await transports.for('https:')).agent,
          proxySecrets: transports.secrets,
        }
      : {},
  );
  const client = (
    service: AwsService,
    where: string,
    credentials: CredentialSource,
    timeoutMs: number,
    succeeded?: () => void,
  ) => {
    // A Region counts once a call there succeeds: told by the attempts' observer.
    const observe: CallObserver | undefined =
      succeeded === undefined
        ? observer
        : (e) => {
            observer?.(e);
            if (e.outcome === 'ok') succeeded();
          };
    return new AwsJsonClient({
      service,
      ...(service === 'sts' ? { protocol: queryProtocol } : {}),
      endpoint: resolveEndpoint(service, {
        region: where,
        useFips: aws.useFips,
        useDualstack: aws.useDualstack,
        override: aws.endpoints[service],
      }),
      region: where,
      credentials,
      maxConnections: config.maxConnections,
      transports,
      timeoutMs,
      ...(options.maxAttempts !== undefined ? { maxAttempts: options.maxAttempts } : {}),
      ...(observe ? { observer: observe } : {}),
      ...(options.userAgent !== undefined ? { userAgent: options.userAgent } : {}),
      log,
    });
  };
  // STS answers for both services: the more patient of their attempt timeouts.
  const stsTimeout = Math.max(
    attemptTimeoutMs(config.timeoutMs.ssm),
    attemptTimeoutMs(config.timeoutMs.secretsmanager),
  );
  let sts: AwsJsonClient | undefined;
  const stsClient = () => {
    // STS in the configured Region: role sessions, and the identity, work in every Region.
    sts ??= client('sts', region, base, stsTimeout);
    return sts;
  };
  const principals = new Principals({
    base,
    region,
    maxRoles: config.maxRoles,
    log,
    makeClient: (service, where, credentials, succeeded) =>
      client(service, where, credentials, config.timeoutMs[service], succeeded),
    assume: (roleArn, since) => {
      return assumeRole(
        stsClient(),
        { roleArn, sessionName: aws.roleSessionName },
        since !== undefined ? { credentialsSince: since } : undefined,
      );
    },
  });
  const ssm = principals.client('ssm');
  const secretsmanager = principals.client('secretsmanager');
  log.debug('upstream ready', {
    credentials: base.name,
    region,
    ssm_timeout_ms: config.timeoutMs.ssm,
  });
  return {
    ssm,
    secretsmanager,
    credentials: {
      name: base.name,
      get: (opts) => base.get(opts),
      invalidate: () => principals.invalidate(),
    },
    client: (service, via) => principals.client(service, via?.roleArn, via?.region),
    region,
    transports,
    async callerIdentity() {
      const out = await stsClient().call<Record<string, unknown>>('GetCallerIdentity', {});
      const text = (v: unknown) => (typeof v === 'string' ? v : undefined);
      return { account: text(out['Account']), arn: text(out['Arn']) };
    },
    close() {
      principals.close();
      sts?.close();
      transports.destroy();
      (base as CredentialSource & { stop?: () => void }).stop?.();
    },
  };
}
