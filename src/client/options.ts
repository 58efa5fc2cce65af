// Public types of pscache/client: options, transforms and the client interface (Powertools-style names).

/** `json`: JSON.parse the value; `binary`: base64-decode it to bytes (Uint8Array). */
export type TransformMethod = 'json' | 'binary';

/** The transforms by name, as Powertools for AWS Lambda spells them (`Transform.JSON`). */
export const Transform = { JSON: 'json', BINARY: 'binary' } as const;

/** Cache controls of the single-item routes (`ttl=`, `refreshNow=`). */
export interface CacheOptions {
  /** Seconds the daemon keeps this value (0..86400), overriding its default TTL. Powertools: `maxAge`. */
  maxAge?: number;
  /** Same as maxAge (the daemon's own name, `ttl=`). */
  ttl?: number;
  /** Bypass the daemon's cache: fetch now and store the new value. Powertools: `forceFetch`. */
  forceFetch?: boolean;
  /** Same as forceFetch (the daemon's `refreshNow=true`). */
  refresh?: boolean;
}

export interface ParameterOptions extends CacheOptions {
  /** A version number (`name:3`); give either this or `label`. */
  version?: number | string;
  /** A label (`name:prod`); give either this or `version`. */
  label?: string;
  /** Decrypt a SecureString (`withDecryption=true`); without it a SecureString is ciphertext. */
  decrypt?: boolean;
  transform?: TransformMethod;
}

export interface SecretOptions extends CacheOptions {
  versionId?: string;
  /** A staging label such as AWSPREVIOUS (default AWSCURRENT). */
  versionStage?: string;
  transform?: TransformMethod;
}

export interface ParametersOptions {
  decrypt?: boolean;
  transform?: TransformMethod;
  /** Default true: a missing item throws. False: missing items are left out of the result. */
  throwOnError?: boolean;
}

export interface PathOptions {
  /** Include parameters in sub-paths too. */
  recursive?: boolean;
  decrypt?: boolean;
  transform?: TransformMethod;
}

export interface SecretsOptions {
  transform?: TransformMethod;
  /** Default true: a missing or denied item throws. False: failed items are left out of the result. */
  throwOnError?: boolean;
}

export interface ClientOptions {
  /** Daemon port; default PARAMETERS_SECRETS_EXTENSION_HTTP_PORT, else 2773 (read at each call). */
  port?: number;
  /** Daemon token; default taken from the environment at each call, in the daemon's order. */
  token?: string;
  /** Limit per attempt in milliseconds (default 1000). */
  timeoutMs?: number;
  /** Attempts after the first on connection failures, timeouts, 429, 502, 503 and 504 (default 2). */
  retries?: number;
  /** First backoff step in milliseconds; doubles per retry, with jitter (default 100). */
  retryBaseMs?: number;
  /** Most backoff between attempts in milliseconds (default 1000). A Retry-After up to 10 s is honoured. */
  retryMaxDelayMs?: number;
  /** Where to read the token and port from (default process.env). */
  env?: Record<string, string | undefined>;
}

type Json = unknown;

/** The client. Its functions do not use `this`: `const { getParameter } = createClient()` works. */
export interface PscacheClient {
  getParameter<T = Json>(name: string, options: ParameterOptions & { transform: 'json' }): Promise<T>;
  getParameter(name: string, options: ParameterOptions & { transform: 'binary' }): Promise<Uint8Array>;
  getParameter(name: string, options?: ParameterOptions & { transform?: undefined }): Promise<string>;
  getParameter(name: string, options?: ParameterOptions): Promise<unknown>;

  getParameters<T = Json>(
    names: readonly string[],
    options: ParametersOptions & { transform: 'json' },
  ): Promise<Record<string, T>>;
  getParameters(
    names: readonly string[],
    options: ParametersOptions & { transform: 'binary' },
  ): Promise<Record<string, Uint8Array>>;
  getParameters(
    names: readonly string[],
    options?: ParametersOptions & { transform?: undefined },
  ): Promise<Record<string, string>>;
  getParameters(names: readonly string[], options?: ParametersOptions): Promise<Record<string, unknown>>;

  getParametersByPath<T = Json>(
    path: string,
    options: PathOptions & { transform: 'json' },
  ): Promise<Record<string, T>>;
  getParametersByPath(
    path: string,
    options: PathOptions & { transform: 'binary' },
  ): Promise<Record<string, Uint8Array>>;
  getParametersByPath(
    path: string,
    options?: PathOptions & { transform?: undefined },
  ): Promise<Record<string, string>>;
  getParametersByPath(path: string, options?: PathOptions): Promise<Record<string, unknown>>;

  getSecret<T = Json>(id: string, options: SecretOptions & { transform: 'json' }): Promise<T>;
  getSecret(id: string, options: SecretOptions & { transform: 'binary' }): Promise<Uint8Array>;
  /** A SecretString as a string; a SecretBinary as bytes. */
  getSecret(id: string, options?: SecretOptions & { transform?: undefined }): Promise<string | Uint8Array>;
  getSecret(id: string, options?: SecretOptions): Promise<unknown>;

  getSecrets<T = Json>(
    ids: readonly string[],
    options: SecretsOptions & { transform: 'json' },
  ): Promise<Record<string, T>>;
  getSecrets(
    ids: readonly string[],
    options: SecretsOptions & { transform: 'binary' },
  ): Promise<Record<string, Uint8Array>>;
  getSecrets(
    ids: readonly string[],
    options?: SecretsOptions & { transform?: undefined },
  ): Promise<Record<string, string | Uint8Array>>;
  getSecrets(ids: readonly string[], options?: SecretsOptions): Promise<Record<string, unknown>>;

  /** Closes the client's idle keep-alive sockets. Not needed before exit: idle sockets never hold a process. */
  close(): void;
}
