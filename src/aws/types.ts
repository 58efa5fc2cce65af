// Shapes shared between the upstream clients and the layers above them. Imports nothing from config:
// src/config.ts builds these shapes from the environment and hands them down.
import type { NetworkConfig } from './network.ts';
import type { SigningCredentials } from './signer.ts';

export type Service = 'ssm' | 'secretsmanager';
/** Every service pscache calls: the two it reads from, and STS for roleArn reads. */
export type AwsService = Service | 'sts';

export interface AwsConfig {
  /** Region used for signing and for the default endpoints; undefined when no variable names one. */
  region: string | undefined;
  /** Static credentials from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN. */
  envCredentials: { accessKeyId: string; secretAccessKey: string; sessionToken?: string } | undefined;
  /** Container credentials endpoint (Lambda SnapStart, ECS, EKS Pod Identity). */
  containerCredentials:
    | { fullUri?: string; relativeUri?: string; authToken?: string; authTokenFile?: string }
    | undefined;
  /** Endpoint overrides per service (AWS_ENDPOINT_URL_SSM, ..._SECRETS_MANAGER, ..._STS, then AWS_ENDPOINT_URL). */
  endpoints: Record<AwsService, string | undefined>;
  /** RoleSessionName of roleArn reads: `pscache-` and the function or host name. */
  roleSessionName: string;
  useFips: boolean;
  useDualstack: boolean;
  /** AWS_PROFILE, passed to the SDK's default chain for sidecars (and the section of credentialsFile). */
  profile: string | undefined;
  /** credentials_file_path: a credentials file that replaces every other source. */
  credentialsFile?: string | undefined;
}

/** What createUpstream needs; the daemon's Config has these fields. */
export interface UpstreamConfig {
  aws: AwsConfig;
  /** Outbound keep-alive sockets per endpoint host (a service in a Region), shared by every role. */
  maxConnections: number;
  /** Outbound sockets over all endpoint hosts together. Default 64. */
  maxOutboundConnections?: number;
  /** Proxies and extra CAs; default none. */
  network?: NetworkConfig;
  /** Per-attempt upstream timeout in milliseconds; 0 means none. */
  timeoutMs: Record<Service, number>;
  /** Most roles live at once for roleArn reads. */
  maxRoles: number;
}

/** Signing credentials with their expiry (shared by the credential sources and the container fetcher). */
export interface AwsCredentials extends SigningCredentials {
  /** When they stop working; undefined for long-term keys. */
  readonly expiration?: Date;
}

/** How an upstream call failed; decides the status pscache answers with and whether to retry. */
export type FailureKind =
  | 'aws' // the service answered with an error document (__type)
  | 'throttled' // ThrottlingException and friends, after retries
  | 'timeout' // per-attempt timeout (*_TIMEOUT_MILLIS), after retries
  | 'network' // connection refused/reset, DNS failure, socket hang up, after retries
  | 'malformed' // a 2xx whose body is not the JSON document the operation returns
  | 'server'; // 5xx from the service, after retries

/** An upstream failure. `code` is the sanitised AWS error code (after `#`, before `:`), or one of ours. */
export class AwsCallError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly kind: FailureKind,
    /** HTTP status the upstream answered with, when it answered. */
    readonly httpStatus?: number,
    /** The x-amzn-RequestId of the failed answer, for support cases. */
    readonly requestId?: string,
  ) {
    super(message);
    this.name = 'AwsCallError';
  }
}

/** STS refused AssumeRole for a roleArn read: the read as a whole is denied (403), never one item of it. */
export class AssumeRoleError extends AwsCallError {}

/**
 * A read pscache refuses before any upstream call: a role beyond max_roles, a Region beyond the limit.
 * Answered 400 with `code` as its `__type`.
 */
export class RefusedError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'RefusedError';
  }
}

/** Observes every attempt, for logs and metrics. Never given request or response bodies. */
export type CallObserver = (event: {
  service: AwsService;
  operation: string;
  outcome: 'ok' | 'error' | 'throttled' | 'timeout' | 'network' | 'malformed' | 'server';
  ms: number;
  attempt: number;
}) => void;

/** SSM Parameter as the wire protocol sends it (LastModifiedDate in epoch seconds). */
export interface WireParameter {
  ARN?: string;
  DataType?: string;
  LastModifiedDate?: number;
  Name: string;
  Selector?: string;
  SourceResult?: string;
  Type: string;
  Value?: string;
  Version?: number;
}

/** Secrets Manager GetSecretValue output as the wire protocol sends it. */
export interface WireSecretValue {
  ARN?: string;
  CreatedDate?: number;
  Name?: string;
  SecretBinary?: string; // base64
  SecretString?: string;
  VersionId?: string;
  VersionStages?: string[];
}

/** One per-secret failure inside a BatchGetSecretValue answer. */
export interface WireBatchSecretError {
  SecretId?: string;
  ErrorCode?: string;
  Message?: string;
}
