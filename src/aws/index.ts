// The upstream layer as the rest of pscache sees it: one signed JSON client per service, built from Config.
import type { Logger } from '../log.ts';
import { AwsJsonClient } from './client.ts';
import { type CredentialSource, createCredentialSource } from './credentials.ts';
import { resolveEndpoint } from './endpoints.ts';
import type { CallObserver, Service, UpstreamConfig } from './types.ts';

export { AwsJsonClient, type AwsJsonClientOptions, type CallOptions, MAX_RESPONSE_BYTES } from './client.ts';
export type { AwsCredentials, CredentialSource } from './credentials.ts';
export { batchGetSecretValue, getSecretValue } from './secretsmanager.ts';
export { getParameter, getParameters, getParametersByPath, parameterSelector } from './ssm.ts';
export * from './types.ts';

export interface Upstream {
  ssm: AwsJsonClient;
  secretsmanager: AwsJsonClient;
  /** Shared by both clients. `get()` at start-up fetches credentials ahead of the first miss. */
  credentials: CredentialSource;
  /** Closes both socket pools. */
  close(): void;
}

/** Signing Region when none is configured but every endpoint is overridden (emulator, LocalStack). */
const FALLBACK_SIGNING_REGION = 'us-east-1';

export interface UpstreamOptions {
  /** Defaults to `pscache/<version>`. */
  userAgent?: string;
  /** Attempts per call; default 3. */
  maxAttempts?: number;
}

/**
 * Builds both clients. Nothing is fetched, imported or connected until the first call. loadConfig has
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
  const credentials = createCredentialSource(aws, log);
  const client = (service: Service) =>
    new AwsJsonClient({
      service,
      endpoint: resolveEndpoint(service, {
        region,
        useFips: aws.useFips,
        useDualstack: aws.useDualstack,
        override: aws.endpoints[service],
      }),
      region,
      credentials,
      maxConnections: config.maxConnections,
      timeoutMs: config.timeoutMs[service],
      ...(options.maxAttempts !== undefined ? { maxAttempts: options.maxAttempts } : {}),
      ...(observer ? { observer } : {}),
      ...(options.userAgent !== undefined ? { userAgent: options.userAgent } : {}),
      log,
    });
  const ssm = client('ssm');
  const secretsmanager = client('secretsmanager');
  log.debug('upstream ready', {
    credentials: credentials.name,
    region,
    ssm_timeout_ms: config.timeoutMs.ssm,
  });
  return {
    ssm,
    secretsmanager,
    credentials,
    close() {
      ssm.close();
      secretsmanager.close();
    },
  };
}
