// Public shapes of the emulator: options, credentials, fault rules, the call log and the seed store file.

/**
 * How a fault rule breaks an answer:
 * - `throttle`: 400 `{"__type":"ThrottlingException","message":"Rate exceeded"}`
 * - `500`: 500 InternalServerError (SSM) / InternalServiceError (Secrets Manager); `503`: 503 ServiceUnavailable
 * - `reset`: the socket is destroyed without an answer; `reset-mid-body`: headers and half a body, then destroyed
 * - `malformed`: 200 with a truncated JSON body; `wrong-content-type`: 200 text/html
 * - `hang`: never answers (until the client gives up or the emulator closes)
 * - `huge`: a valid 50 MB JSON body; `endless`: streams bytes until the client disconnects (at most 60 s)
 */
export type FaultKind =
  | 'throttle'
  | '500'
  | '503'
  | 'reset'
  | 'reset-mid-body'
  | 'malformed'
  | 'hang'
  | 'wrong-content-type'
  | 'huge'
  | 'endless';

export const FAULT_KINDS: readonly FaultKind[] = [
  'throttle',
  '500',
  '503',
  'reset',
  'reset-mid-body',
  'malformed',
  'hang',
  'wrong-content-type',
  'huge',
  'endless',
];

export interface FaultRule {
  /** Operation name (`GetParameter`, `ssm:GetParameter`, `AmazonSSM.GetParameter`, `AssumeRole`); absent = every operation. */
  operation?: string;
  /** Exact Name / SecretId (or Path, or RoleArn) of the request, or one of its Names / SecretIdList; absent = any. */
  name?: string;
  /** Delay before answering (or before the fault), in milliseconds. */
  latencyMs?: number;
  error?: FaultKind;
  /** Apply to the next N matching calls only; absent = unlimited. */
  times?: number;
}

export interface EmulatorCredential {
  accessKeyId: string;
  secretAccessKey: string;
  /** When set, requests must carry it in X-Amz-Security-Token. */
  sessionToken?: string;
  /** Epoch milliseconds after which requests signed with this key get ExpiredTokenException. */
  expiresAt?: number;
}

export interface RateLimitOptions {
  /** Shared by GetParameter, GetParameters and GetParametersByPath (SSM's default is 40). */
  ssmTps?: number;
  /** Shared by GetSecretValue, BatchGetSecretValue and DescribeSecret. */
  secretsTps?: number;
}

export interface ContainerCredentialsOptions {
  /** Value the `Authorization` header of a container-credentials request must carry. */
  authToken: string;
  /** Lifetime of each minted credential set, in seconds. */
  ttlSeconds: number;
}

export type ParameterType = 'String' | 'StringList' | 'SecureString';

/** One SSM parameter in a store file. */
export interface StoreParameter {
  name: string;
  /** Default `String`. */
  type?: ParameterType;
  /** The latest value. */
  value: string;
  /** Older values, oldest first: `["v1","v2"]` plus `value` gives versions 1, 2 and 3. */
  versions?: string[];
  /** Label -> version number. */
  labels?: Record<string, number>;
  description?: string;
  /** The Region it lives in (its ARN names it); default: the store's region. */
  region?: string;
}

/** One secret version's value in a store file: exactly one of the two. */
export interface StoreSecretValue {
  secretString?: string;
  /** Base64. */
  secretBinary?: string;
  /** UUID; random when absent. */
  versionId?: string;
}

/** One Secrets Manager secret in a store file. Its current value carries AWSCURRENT. */
export interface StoreSecret extends StoreSecretValue {
  name: string;
  description?: string;
  /** The 6 characters after `name-` in the ARN; random when absent. */
  arnSuffix?: string;
  /** A version carrying AWSPREVIOUS. */
  previous?: StoreSecretValue;
  /** Tag key -> value (BatchGetSecretValue's `tag-key` and `tag-value` filters find them). */
  tags?: Record<string, string>;
  /** The Region it lives in (its ARN names it); default: the store's region. */
  region?: string;
}

/** The seed store (examples/store.json). Keys starting with `$` are ignored (for comments). */
export interface StoreFile {
  /** The emulator's own Region: where unsigned requests and entries without a region go. */
  region?: string;
  accountId?: string;
  parameters?: StoreParameter[];
  secrets?: StoreSecret[];
  /** Names / secret ids (trailing `*` = prefix) whose reads answer AccessDeniedException. */
  deny?: string[];
  /** Operations denied outright, e.g. `BatchGetSecretValue`. */
  denyOperations?: string[];
}

export interface EmulatorOptions {
  /** 0 = ephemeral (the default). */
  port?: number;
  /** A store object or the path of a store file. */
  store?: StoreFile | string;
  /** When given (even empty), SigV4 signatures are verified against these. */
  credentials?: EmulatorCredential[];
  /** Overrides the store's region (default us-east-1). */
  region?: string;
  /** Overrides the store's account id (default 123456789012). */
  accountId?: string;
  /** One line per request (operation, status, milliseconds); never values. */
  log?: (line: string) => void;
  /** Enables GET /__emulator/container-credentials; turns SigV4 verification on. */
  containerCredentials?: ContainerCredentialsOptions;
  /**
   * The secret the control API (`/__emulator/*`) wants in the `X-Emulator-Control-Token` header:
   * 16-512 visible ASCII characters. Random when absent; read it back from `Emulator.controlToken`.
   */
  controlToken?: string;
  /** Lifetime of AssumeRole credentials when the request gives no DurationSeconds (default 3600). */
  roleSessionSeconds?: number;
  /** Epoch milliseconds now; inject one to move time (expiry of minted credentials, rate limits). */
  clock?: () => number;
  /**
   * Host names answered besides loopback, with any port: the names a client uses when the emulator sits
   * behind a TLS front or a proxy. Anything else in `Host` is refused (DNS rebinding).
   */
  hostNames?: string[];
}

/** One AWS call as the emulator received it. */
export interface CallRecord {
  /** `GetParameter`, `AssumeRole`, ... (the raw X-Amz-Target or Action when unknown). */
  operation: string;
  /**
   * Who signed it: the role ARN when signed with credentials minted by AssumeRole, else the access key
   * id of the Authorization header; null when unsigned.
   */
  principal: string | null;
  /** The Region of the SigV4 credential scope; null when unsigned. */
  signingRegion: string | null;
  /** The error answered (`ResourceNotFoundException`, `fault:reset`, ...); absent on success. */
  error?: string;
}

export interface Emulator {
  /** http://127.0.0.1:PORT */
  url: string;
  port: number;
  /** The default Region (of the store, or the region option). */
  region: string;
  accountId: string;
  /** The value the control API wants in the X-Emulator-Control-Token header. */
  controlToken: string;
  close(): Promise<void>;
  /** Requests received per operation (including faulted, denied and rejected ones). */
  calls(): Record<string, number>;
  /** Every AWS call since the last reset, oldest first (at most the last 10,000). */
  callLog(): CallRecord[];
  /** Zeroes the counters and empties the call log. */
  resetCalls(): void;
  setFaults(f: FaultRule[]): void;
  clearFaults(): void;
  /** Adds names / secret ids (trailing `*` = prefix) to the deny list. */
  deny(resources: string[]): void;
  /** Adds operations (`BatchGetSecretValue`, `ssm:GetParameters`, ...) to the denied set. */
  denyOperations(ops: string[]): void;
  /** Adds role ARNs (trailing `*` = prefix) that AssumeRole refuses with AccessDenied. */
  denyRoles(roleArns: string[]): void;
  /**
   * Calls signed with credentials minted for `roleArn` may read only these resources (names, secret ids
   * or ARNs; trailing `*` = prefix); other reads answer AccessDeniedException. Replaces the role's list;
   * undefined lifts the restriction.
   */
  allowRole(roleArn: string, resources: string[] | undefined): void;
  /** Clears every denial: resources, operations, roles and the per-role allow lists. */
  clearDeny(): void;
  /** undefined turns SigV4 verification off (unless container credentials are configured). */
  setCredentials(c: EmulatorCredential[] | undefined): void;
  setRateLimit(opts: RateLimitOptions | undefined): void;
  setContainerCredentials(c: ContainerCredentialsOptions | undefined): void;
  /** Destroys every open client connection (keep-alive ones too), as a NAT or a frozen peer would. */
  dropConnections(): void;
  /** Adds (or replaces) the store's parameters and secrets; returns their ARNs in order. */
  seed(store: StoreFile): { parameters: string[]; secrets: string[] };
  /** Adds or replaces one parameter (its versions and labels as in a store file); returns its ARN. */
  putParameter(p: StoreParameter): string;
  /** Adds or replaces one secret (as in a store file); returns its ARN. */
  createSecret(s: StoreSecret): string;
}
