// Environment -> validated Config. The only module that reads environment variables.
import { readFileSync } from 'node:fs';

export type Service = 'ssm' | 'secretsmanager';
export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'none';
export type LogFormat = 'text' | 'json';

export interface PrefetchItem {
  service: Service;
  /** Parameter name or secret id, exactly as given after the `ssm:` / `secretsmanager:` prefix. */
  id: string;
}

export interface AwsConfig {
  /** Region used for signing and for the default endpoints; undefined when no variable names one. */
  region: string | undefined;
  /** Static credentials from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN. */
  envCredentials: { accessKeyId: string; secretAccessKey: string; sessionToken?: string } | undefined;
  /** Container credentials endpoint (Lambda SnapStart, ECS, EKS Pod Identity). */
  containerCredentials:
    | { fullUri?: string; relativeUri?: string; authToken?: string; authTokenFile?: string }
    | undefined;
  /** Endpoint overrides per service (AWS_ENDPOINT_URL_SSM, ..._SECRETS_MANAGER, then AWS_ENDPOINT_URL). */
  endpoints: { ssm: string | undefined; secretsmanager: string | undefined };
  useFips: boolean;
  useDualstack: boolean;
  /** AWS_PROFILE, passed to the SDK's default chain for sidecars. */
  profile: string | undefined;
}

export interface Config {
  port: number;
  /** False when CACHE_ENABLED=false or CACHE_SIZE=0. A service with ttl 0 is also uncached. */
  cacheEnabled: boolean;
  /** Most items held. */
  cacheSize: number;
  /** Most bytes of cached response bodies. */
  cacheMaxBytes: number;
  /** Time to live per service, in milliseconds; 0 disables caching for that service. */
  ttlMs: Record<Service, number>;
  /** Per-attempt upstream timeout in milliseconds; 0 means none. */
  timeoutMs: Record<Service, number>;
  /** Outbound keep-alive sockets per upstream service. */
  maxConnections: number;
  logLevel: LogLevel;
  logFormat: LogFormat;
  prefetch: PrefetchItem[];
  /** How long past expiry an entry may be served while upstream fails transiently (ms); 0 = off. */
  staleIfErrorMs: number;
  maxInboundConnections: number;
  /** How long a miss waits for others to share one batch call (ms); 0 = batching off. */
  batchWindowMs: number;
  /** Expected value of X-Aws-Parameters-Secrets-Token; undefined when no source is set. */
  token: string | undefined;
  /** Name of the variable the token came from (never the value). */
  tokenSource: string | undefined;
  aws: AwsConfig;
  lambda: {
    /** host:port of the Lambda Runtime API when running as an extension. */
    runtimeApi: string | undefined;
    snapStart: boolean;
    functionMemoryMb: number | undefined;
  };
  /** Notes worth logging at start (clamps, aliases used). Never contain values of secrets. */
  notes: string[];
}

/** A configuration value that cannot be used. The message names the variable, the value and what is allowed. */
export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    readonly value: string | undefined,
    readonly allowed: string,
    /** False for values that must not be echoed (tokens). */
    showValue = true,
  ) {
    super(
      value === undefined
        ? `${variable} is not set: ${allowed}`
        : `${variable}=${showValue ? JSON.stringify(value) : '(hidden)'} is invalid: ${allowed}`,
    );
    this.name = 'ConfigError';
  }
}

type Env = Record<string, string | undefined>;

export const ENV = {
  cacheEnabled: 'PARAMETERS_SECRETS_EXTENSION_CACHE_ENABLED',
  cacheSize: 'PARAMETERS_SECRETS_EXTENSION_CACHE_SIZE',
  maxCacheSize: 'PARAMETERS_SECRETS_EXTENSION_MAX_CACHE_SIZE',
  ssmTtl: 'SSM_PARAMETER_STORE_TTL',
  smTtl: 'SECRETS_MANAGER_TTL',
  ttlSecs: 'PARAMETERS_SECRETS_EXTENSION_TTL_SECS',
  ssmTimeout: 'SSM_PARAMETER_STORE_TIMEOUT_MILLIS',
  smTimeout: 'SECRETS_MANAGER_TIMEOUT_MILLIS',
  port: 'PARAMETERS_SECRETS_EXTENSION_HTTP_PORT',
  maxConnections: 'PARAMETERS_SECRETS_EXTENSION_MAX_CONNECTIONS',
  logLevel: 'PARAMETERS_SECRETS_EXTENSION_LOG_LEVEL',
  lambdaLogLevel: 'AWS_LAMBDA_LOG_LEVEL',
  lambdaLogFormat: 'AWS_LAMBDA_LOG_FORMAT',
  prefetch: 'PARAMETERS_SECRETS_EXTENSION_PREFETCH',
  staleIfError: 'PARAMETERS_SECRETS_EXTENSION_STALE_IF_ERROR',
  maxInbound: 'PARAMETERS_SECRETS_EXTENSION_MAX_INBOUND_CONNECTIONS',
  batchWindow: 'PARAMETERS_SECRETS_EXTENSION_BATCH_WINDOW_MILLIS',
  token: 'PARAMETERS_SECRETS_EXTENSION_TOKEN',
} as const;

export const LIMITS = {
  cacheSize: 100_000,
  ttlSeconds: 86_400,
  maxCacheMb: 1_048_576,
  timeoutMillis: 2_147_483_647,
  maxConnections: 1_000,
  staleIfErrorSeconds: 86_400,
  maxInbound: 65_535,
  batchWindowMillis: 100,
} as const;

/** Reads an env var; empty or all-blank values count as unset (`VAR=` in a shell or console). */
function read(env: Env, name: string): string | undefined {
  const v = env[name];
  return v === undefined || v.trim() === '' ? undefined : v;
}

function int(env: Env, name: string, min: number, max: number, fallback: number): number {
  const raw = read(env, name);
  if (raw === undefined) return fallback;
  const t = raw.trim();
  const allowed = `must be a whole number from ${min} to ${max}`;
  if (!/^\d+$/.test(t)) throw new ConfigError(name, raw, allowed);
  const n = Number(t);
  if (!Number.isSafeInteger(n) || n < min || n > max) throw new ConfigError(name, raw, allowed);
  return n;
}

function bool(env: Env, name: string, fallback: boolean): boolean {
  const raw = read(env, name);
  if (raw === undefined) return fallback;
  const t = raw.trim().toLowerCase();
  if (t === 'true') return true;
  if (t === 'false') return false;
  throw new ConfigError(name, raw, 'must be true or false (any case)');
}

const LEVELS: readonly LogLevel[] = ['debug', 'info', 'warn', 'error', 'none'];
/** Lambda's advanced logging controls use TRACE..FATAL; map them onto ours. */
const LAMBDA_LEVELS: Record<string, LogLevel> = {
  trace: 'debug',
  debug: 'debug',
  info: 'info',
  warn: 'warn',
  error: 'error',
  fatal: 'error',
};

function logLevel(env: Env): LogLevel {
  const own = read(env, ENV.logLevel);
  if (own !== undefined) {
    const t = own.trim().toLowerCase();
    if ((LEVELS as readonly string[]).includes(t)) return t as LogLevel;
    throw new ConfigError(ENV.logLevel, own, `must be one of ${LEVELS.join(', ')} (any case)`);
  }
  const lambda = read(env, ENV.lambdaLogLevel);
  if (lambda !== undefined) {
    const mapped = LAMBDA_LEVELS[lambda.trim().toLowerCase()];
    if (mapped) return mapped;
    throw new ConfigError(
      ENV.lambdaLogLevel,
      lambda,
      'must be one of TRACE, DEBUG, INFO, WARN, ERROR, FATAL (any case)',
    );
  }
  return 'info';
}

function logFormat(env: Env): LogFormat {
  const raw = read(env, ENV.lambdaLogFormat);
  if (raw === undefined) return 'text';
  const t = raw.trim().toLowerCase();
  if (t === 'json') return 'json';
  if (t === 'text') return 'text';
  throw new ConfigError(ENV.lambdaLogFormat, raw, 'must be JSON or Text (any case)');
}

function prefetch(env: Env): PrefetchItem[] {
  const raw = read(env, ENV.prefetch);
  if (raw === undefined) return [];
  const items: PrefetchItem[] = [];
  for (const part of raw.split(',')) {
    const entry = part.trim();
    if (entry === '') continue;
    const m = /^(ssm|secretsmanager):(.+)$/.exec(entry);
    if (!m || m[2]!.length > 2048) {
      throw new ConfigError(
        ENV.prefetch,
        raw,
        `entry ${JSON.stringify(entry)} must be ssm:NAME or secretsmanager:ID (names up to 2048 characters), comma-separated`,
      );
    }
    items.push({ service: m[1] as Service, id: m[2]! });
  }
  return items;
}

function endpoint(env: Env, name: string): string | undefined {
  const raw = read(env, name);
  if (raw === undefined) return undefined;
  let url: URL;
  try {
    url = new URL(raw.trim());
  } catch {
    throw new ConfigError(name, raw, 'must be an absolute http:// or https:// URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new ConfigError(name, raw, 'must be an absolute http:// or https:// URL');
  }
  return url.toString();
}

function token(env: Env): { token: string | undefined; source: string | undefined } {
  const own = env[ENV.token];
  if (own !== undefined && own !== '') {
    if (own.startsWith('file://')) {
      let path: string;
      try {
        path = decodeURIComponent(new URL(own).pathname);
      } catch {
        throw new ConfigError(ENV.token, own, 'a file:// value must be a file URL such as file:///run/token');
      }
      let text: string;
      try {
        text = readFileSync(path, 'utf8');
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code ?? 'error';
        throw new ConfigError(ENV.token, own, `the token file could not be read (${code})`);
      }
      const value = text.replace(/\r?\n$/, '');
      if (value === '') throw new ConfigError(ENV.token, own, 'the token file is empty');
      return { token: value, source: `${ENV.token} (file)` };
    }
    return { token: own, source: ENV.token };
  }
  for (const name of ['AWS_SESSION_TOKEN', 'AWS_CONTAINER_AUTHORIZATION_TOKEN']) {
    const v = env[name];
    if (v !== undefined && v !== '') return { token: v, source: name };
  }
  return { token: undefined, source: undefined };
}

function awsConfig(env: Env): AwsConfig {
  const region = read(env, 'AWS_REGION') ?? read(env, 'AWS_DEFAULT_REGION');
  if (region !== undefined && !/^[a-z0-9-]{1,64}$/.test(region.trim())) {
    const name = read(env, 'AWS_REGION') !== undefined ? 'AWS_REGION' : 'AWS_DEFAULT_REGION';
    throw new ConfigError(name, region, 'must be a Region name such as us-east-1');
  }
  const akid = read(env, 'AWS_ACCESS_KEY_ID');
  const secret = read(env, 'AWS_SECRET_ACCESS_KEY');
  if ((akid === undefined) !== (secret === undefined)) {
    const missing = akid === undefined ? 'AWS_ACCESS_KEY_ID' : 'AWS_SECRET_ACCESS_KEY';
    throw new ConfigError(
      missing,
      undefined,
      'set both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or neither',
    );
  }
  const sessionToken = read(env, 'AWS_SESSION_TOKEN');
  const fullUri = read(env, 'AWS_CONTAINER_CREDENTIALS_FULL_URI');
  const relativeUri = read(env, 'AWS_CONTAINER_CREDENTIALS_RELATIVE_URI');
  const fallback = endpoint(env, 'AWS_ENDPOINT_URL');
  return {
    region: region?.trim(),
    envCredentials:
      akid !== undefined && secret !== undefined
        ? {
            accessKeyId: akid.trim(),
            secretAccessKey: secret.trim(),
            ...(sessionToken ? { sessionToken } : {}),
          }
        : undefined,
    containerCredentials:
      fullUri !== undefined || relativeUri !== undefined
        ? {
            ...(fullUri !== undefined ? { fullUri: fullUri.trim() } : {}),
            ...(relativeUri !== undefined ? { relativeUri: relativeUri.trim() } : {}),
            ...(read(env, 'AWS_CONTAINER_AUTHORIZATION_TOKEN') !== undefined
              ? { authToken: env['AWS_CONTAINER_AUTHORIZATION_TOKEN']! }
              : {}),
            ...(read(env, 'AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE') !== undefined
              ? { authTokenFile: env['AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE']!.trim() }
              : {}),
          }
        : undefined,
    endpoints: {
      ssm: endpoint(env, 'AWS_ENDPOINT_URL_SSM') ?? fallback,
      secretsmanager: endpoint(env, 'AWS_ENDPOINT_URL_SECRETS_MANAGER') ?? fallback,
    },
    useFips: bool(env, 'AWS_USE_FIPS_ENDPOINT', false),
    useDualstack: bool(env, 'AWS_USE_DUALSTACK_ENDPOINT', false),
    profile: read(env, 'AWS_PROFILE'),
  };
}

export interface LambdaSettings {
  /** host:port of the Lambda Runtime API when running as an extension. */
  runtimeApi: string | undefined;
  snapStart: boolean;
  logLevel: LogLevel;
  logFormat: LogFormat;
}

/**
 * What the Lambda lifecycle needs even when the rest of the configuration is invalid: it must still
 * register and report the error through init/error, in the log format the function asked for. Never
 * throws; a bad log variable falls back to the default here and is reported by loadConfig.
 */
export function lambdaSettings(env: Env): LambdaSettings {
  const fallback = <T>(f: () => T, value: T): T => {
    try {
      return f();
    } catch {
      return value;
    }
  };
  return {
    runtimeApi: read(env, 'AWS_LAMBDA_RUNTIME_API')?.trim(),
    snapStart: read(env, 'AWS_LAMBDA_INITIALIZATION_TYPE')?.trim().toLowerCase() === 'snap-start',
    logLevel: fallback(() => logLevel(env), 'info'),
    logFormat: fallback(() => logFormat(env), 'text'),
  };
}

/** `serve` needs a token source; the error says how to set one. */
export function requireToken(config: Config): string {
  if (config.token === undefined) {
    throw new ConfigError(
      ENV.token,
      undefined,
      'no token source: set PARAMETERS_SECRETS_EXTENSION_TOKEN to a value or file:///path (inside Lambda, AWS_SESSION_TOKEN is used)',
    );
  }
  return config.token;
}

/** Turns an environment into a Config, or throws ConfigError naming the first bad variable. */
export function loadConfig(env: Env): Config {
  const notes: string[] = [];
  const cacheSize = int(env, ENV.cacheSize, 0, LIMITS.cacheSize, 1000);
  const cacheEnabled = bool(env, ENV.cacheEnabled, true) && cacheSize > 0;

  // Per-service TTL variables win over the article's single TTL.
  const sharedTtl = int(env, ENV.ttlSecs, 0, LIMITS.ttlSeconds, 300);
  const ssmTtl = int(env, ENV.ssmTtl, 0, LIMITS.ttlSeconds, sharedTtl);
  const smTtl = int(env, ENV.smTtl, 0, LIMITS.ttlSeconds, sharedTtl);

  const memoryRaw = read(env, 'AWS_LAMBDA_FUNCTION_MEMORY_SIZE');
  const functionMemoryMb =
    memoryRaw === undefined ? undefined : int(env, 'AWS_LAMBDA_FUNCTION_MEMORY_SIZE', 1, 1_048_576, 0);
  let maxMb = int(env, ENV.maxCacheSize, 1, LIMITS.maxCacheMb, 1000);
  if (functionMemoryMb !== undefined && maxMb > functionMemoryMb / 2) {
    const clamped = Math.max(1, Math.floor(functionMemoryMb / 2));
    if (read(env, ENV.maxCacheSize) !== undefined) {
      notes.push(`${ENV.maxCacheSize}=${maxMb} is over half the function memory; using ${clamped} MB`);
    }
    maxMb = clamped;
  }

  const { token: tok, source } = token(env);
  const lambda = lambdaSettings(env);

  return {
    port: int(env, ENV.port, 1, 65535, 2773),
    cacheEnabled,
    cacheSize,
    cacheMaxBytes: maxMb * 1024 * 1024,
    ttlMs: { ssm: ssmTtl * 1000, secretsmanager: smTtl * 1000 },
    timeoutMs: {
      ssm: int(env, ENV.ssmTimeout, 0, LIMITS.timeoutMillis, 0),
      secretsmanager: int(env, ENV.smTimeout, 0, LIMITS.timeoutMillis, 0),
    },
    maxConnections: int(env, ENV.maxConnections, 1, LIMITS.maxConnections, 3),
    logLevel: logLevel(env),
    logFormat: logFormat(env),
    prefetch: prefetch(env),
    staleIfErrorMs: int(env, ENV.staleIfError, 0, LIMITS.staleIfErrorSeconds, 300) * 1000,
    maxInboundConnections: int(env, ENV.maxInbound, 1, LIMITS.maxInbound, 1024),
    batchWindowMs: int(env, ENV.batchWindow, 0, LIMITS.batchWindowMillis, 2),
    token: tok,
    tokenSource: source,
    aws: awsConfig(env),
    lambda: {
      runtimeApi: lambda.runtimeApi,
      snapStart: lambda.snapStart,
      functionMemoryMb,
    },
    notes,
  };
}
