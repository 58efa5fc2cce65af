// The one table of settings: every variable and --config key pscache reads, with its default, what it
// allows and what it means. loadConfig (src/config.ts) validates from it; `npm run docs:config` prints it.
import { parseRoleArn, ROLE_ARN_FORMAT } from '../arn.ts';
import {
  NetworkSettingError,
  type NoProxyRule,
  type ProxyUrl,
  parseNoProxy,
  parseProxyUrl,
} from '../aws/network.ts';
import type { Service } from '../aws/types.ts';
import { nonSecretVariable } from '../client/token-source.ts';

import type { LogFormat, LogLevel } from '../log.ts';

export type { LogFormat, LogLevel };

/**
 * Whose setting it is: the AWS Parameters and Secrets Lambda Extension's, pscache's own, the AWS Workload
 * Credentials Provider's (under pscache's name where it has a variable), or a standard AWS variable.
 */
export type Origin = 'official' | 'pscache' | 'provider' | 'aws';

/** A configuration value that cannot be used. The message names the variable, the value and what is allowed. */
export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    readonly value: string | undefined,
    readonly allowed: string,
    /** False for values that must not be echoed (tokens). */
    showValue = true,
    message?: string,
  ) {
    super(
      message ??
        (value === undefined
          ? `${variable} is not set: ${allowed}`
          : `${variable}=${showValue ? JSON.stringify(value) : '(hidden)'} is invalid: ${allowed}`),
    );
    this.name = 'ConfigError';
  }

  /** A problem with one key of a --config file: names the file and the key with its table path. */
  static inFile(file: string, key: string, problem: string): ConfigError {
    return new ConfigError(key, undefined, problem, true, `${file}: ${key} ${problem}`);
  }
}

/** Thrown by a setting's parser; `message` completes "VAR=value is invalid: ...". */
export class Invalid extends Error {}

export interface Setting<T> {
  /** The environment variable; absent for settings only a --config file can give. */
  readonly env?: string;
  /** Variables read, in order, when `env` is unset. */
  readonly aliases?: readonly string[];
  /** The key in a --config file (the Workload Credentials Provider's nested form). */
  readonly toml?: string;
  /** The same key in the provider's older flat form, at the root of the file. */
  readonly flat?: string;
  readonly origin: Origin;
  readonly default: T;
  /** The default as the docs show it, where String(default) would not do. */
  readonly defaultText?: string;
  /** What is allowed, for the docs (the parser's error says it in full). */
  readonly allowed: string;
  /** One line on what it does. */
  readonly meaning: string;
  /** Text (a variable, or a file scalar as text) -> value; throws Invalid. */
  readonly parse: (raw: string) => T;
  /** A file value that is not a scalar (arrays, arrays of tables) -> value; throws Invalid. */
  readonly fromFile?: (value: unknown) => T;
  /** Never echoed in errors. */
  readonly secret?: boolean;
  /**
   * A value of only blanks counts as set (not as unset, falling through to an alias), as Go's getEnvAny
   * takes any value but "": NO_PROXY=" " beside no_proxy=* means no entries, not *.
   */
  readonly blankIsSet?: boolean;
}

/** Longest time to live pscache accepts, in seconds (the original extension clamps at 300). */
export const MAX_TTL_SECONDS = 86_400;
export const DEFAULT_PATH_PREFIX = '/v1/';

type Meta = Omit<Setting<never>, 'parse' | 'default' | 'allowed' | 'fromFile'>;

function int(meta: Meta & { min: number; max: number; default: number }): Setting<number> & { max: number } {
  const allowed = `a whole number from ${meta.min} to ${meta.max}`;
  return {
    ...meta,
    allowed,
    parse(raw) {
      const t = raw.trim();
      const n = Number(t);
      if (!/^\d+$/.test(t) || !Number.isSafeInteger(n) || n < meta.min || n > meta.max) {
        throw new Invalid(`must be ${allowed}`);
      }
      return n;
    },
  };
}

function bool(meta: Meta & { default: boolean }): Setting<boolean> {
  return { ...meta, allowed: 'true or false', parse: parseBool };
}

function parseBool(raw: string): boolean {
  const t = raw.trim().toLowerCase();
  if (t === 'true') return true;
  if (t === 'false') return false;
  throw new Invalid('must be true or false (any case)');
}

function oneOf<T extends string>(
  meta: Meta & { default: T },
  values: Record<string, T>,
  shown: string,
): Setting<T> {
  return {
    ...meta,
    allowed: `${shown} (any case)`,
    parse(raw) {
      const v = values[raw.trim().toLowerCase()];
      if (v === undefined) throw new Invalid(`must be one of ${shown} (any case)`);
      return v;
    },
  };
}

/** A comma-separated list in a variable, a TOML array of strings in a file; never empty. */
function list(
  meta: Meta & { default: readonly string[] },
  item: { pattern: RegExp; what: string; refuse?: (item: string) => string | undefined },
): Setting<readonly string[]> {
  const allowed = `a non-empty list of ${item.what}s (comma-separated in a variable, an array in the file)`;
  const check = (items: string[]) => {
    if (items.length === 0) throw new Invalid(`must be ${allowed}`);
    for (const i of items) {
      if (!item.pattern.test(i)) throw new Invalid(`${JSON.stringify(i)} is not a ${item.what}`);
      const why = item.refuse?.(i);
      if (why !== undefined) throw new Invalid(why);
    }
    return items;
  };
  return {
    ...meta,
    defaultText: meta.default.join(', '),
    allowed,
    parse: (raw) => check(raw.split(',').flatMap((s) => (s.trim() === '' ? [] : [s.trim()]))),
    fromFile(value) {
      if (!Array.isArray(value) || !value.every((v) => typeof v === 'string')) {
        throw new Invalid(`must be ${allowed}`);
      }
      return check(value.map((v: string) => v.trim()));
    },
  };
}

function httpUrl(meta: Meta): Setting<string | undefined> {
  const allowed = 'an absolute http:// or https:// URL';
  return {
    ...meta,
    default: undefined,
    defaultText: '—',
    allowed,
    parse(raw) {
      let url: URL;
      try {
        url = new URL(raw.trim());
      } catch {
        throw new Invalid(`must be ${allowed}`);
      }
      if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Invalid(`must be ${allowed}`);
      return url.toString();
    },
  };
}

const LOG_LEVELS: Record<string, LogLevel> = {
  debug: 'debug',
  info: 'info',
  warn: 'warn',
  error: 'error',
  none: 'none',
};
/** Lambda's advanced logging controls use TRACE..FATAL; map them onto ours. */
const LAMBDA_LEVELS: Record<string, LogLevel> = {
  trace: 'debug',
  debug: 'debug',
  info: 'info',
  warn: 'warn',
  error: 'error',
  fatal: 'error',
};

export interface PrefetchItem {
  service: Service;
  /** Parameter name or secret id, exactly as given after the `ssm:` / `secretsmanager:` prefix. */
  id: string;
  /** `ssm-path:`: `id` is a path, and every parameter under it (recursively) is fetched. */
  path?: true;
  /** Read with credentials from this role (--config prefetch.secrets role_arn). */
  roleArn?: string;
}

/** Tag-based discovery: every secret carrying this tag key (any value), through BatchGetSecretValue filters. */
export interface PrefetchTag {
  key: string;
  roleArn?: string;
}

const MAX_ID_LENGTH = 2048;

function parsePrefetch(raw: string): PrefetchItem[] {
  const items: PrefetchItem[] = [];
  for (const part of raw.split(',')) {
    const entry = part.trim();
    if (entry === '') continue;
    const m = /^(ssm|secretsmanager|ssm-path):(.+)$/.exec(entry);
    if (!m || m[2]!.length > MAX_ID_LENGTH || (m[1] === 'ssm-path' && !m[2]!.startsWith('/'))) {
      throw new Invalid(
        `entry ${JSON.stringify(entry)} must be ssm:NAME, secretsmanager:ID or ssm-path:/PATH/ (names up to ${MAX_ID_LENGTH} characters), comma-separated`,
      );
    }
    items.push(
      m[1] === 'ssm-path'
        ? { service: 'ssm', id: m[2]!, path: true }
        : { service: m[1] as Service, id: m[2]! },
    );
  }
  return items;
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are exactly what is refused
const CONTROL = /[\u0000-\u001f\u007f]/;

/** An array of tables with the given string fields (`required` must be there); role_arn must be a role ARN. */
function records<K extends string>(
  fields: readonly K[],
  required: K,
  maxLength: number,
): (value: unknown) => Array<Partial<Record<K, string>> & Record<typeof required, string>> {
  return (value) => {
    const shape = `a list of tables { ${fields.map((f) => (f === required ? f : `${f}?`)).join(', ')} }`;
    if (!Array.isArray(value)) throw new Invalid(`must be ${shape}`);
    return value.map((entry: unknown, i) => {
      if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) {
        throw new Invalid(`entry ${i + 1} must be a table { ${fields.join(', ')} }`);
      }
      const out: Partial<Record<K, string>> = {};
      for (const [k, v] of Object.entries(entry)) {
        if (!(fields as readonly string[]).includes(k)) {
          throw new Invalid(`entry ${i + 1} has an unknown key ${k}; allowed: ${fields.join(', ')}`);
        }
        if (typeof v !== 'string' || v === '' || v.length > maxLength || CONTROL.test(v)) {
          throw new Invalid(
            `entry ${i + 1}: ${k} must be a non-empty string of at most ${maxLength} characters`,
          );
        }
        if (k === 'role_arn' && !parseRoleArn(v)) {
          throw new Invalid(`entry ${i + 1}: role_arn must be ${ROLE_ARN_FORMAT}`);
        }
        out[k as K] = v;
      }
      if (out[required] === undefined) throw new Invalid(`entry ${i + 1} needs ${required}`);
      return out as Partial<Record<K, string>> & Record<typeof required, string>;
    });
  };
}

const secretRecords = records(['secret_id', 'role_arn'] as const, 'secret_id', MAX_ID_LENGTH);
const tagRecords = records(['key', 'role_arn'] as const, 'key', 128);

/** Only a file can give these; a variable never does. */
function fileOnly<T>(meta: Meta & { default: T; allowed: string; fromFile: (v: unknown) => T }): Setting<T> {
  return {
    ...meta,
    parse() {
      throw new Invalid(`must be ${meta.allowed}`);
    },
  };
}

const SM = 'capabilities.secrets_manager';

/** Names an EMF line uses itself: a dimension may not take one. */
const EMF_RESERVED = new Set([
  '_aws',
  'Reads',
  'Hits',
  'Misses',
  'UpstreamCalls',
  'StaleServed',
  'Throttled',
  'Errors',
  'ReadLatencyAvg',
  'ReadLatencyMax',
]);

function parseDimensions(raw: string): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (const part of raw.split(',')) {
    const entry = part.trim();
    if (entry === '') continue;
    const eq = entry.indexOf('=');
    const name = eq === -1 ? '' : entry.slice(0, eq).trim();
    const value = eq === -1 ? '' : entry.slice(eq + 1).trim();
    if (!/^[A-Za-z0-9_.-]{1,250}$/.test(name) || value === '' || value.length > 1024 || CONTROL.test(value)) {
      throw new Invalid(
        `entry ${JSON.stringify(entry)} must be Name=value (a name of A-Z a-z 0-9 _ . -, a value of 1 to 1024 characters)`,
      );
    }
    if (EMF_RESERVED.has(name)) throw new Invalid(`${name} is a name the EMF line uses itself`);
    if (out.some(([n]) => n === name)) throw new Invalid(`${name} is given twice`);
    out.push([name, value]);
  }
  if (out.length === 0 || out.length > 30) throw new Invalid('must give 1 to 30 dimensions');
  return out;
}

function parseAddress(raw: string): { host: string; port: number } {
  const t = raw.trim();
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/.exec(t);
  const port = m ? Number(m[3]) : 0;
  if (!m || port < 1 || port > 65535) {
    throw new Invalid('must be HOST:PORT, such as 0.0.0.0:9102, 127.0.0.1:9102 or [::]:9102');
  }
  return { host: m[1] ?? m[2]!, port };
}

/** A parser from src/aws/network.ts, its complaint made the setting's. */
function network<T>(parse: (raw: string) => T): (raw: string) => T {
  return (raw) => {
    try {
      return parse(raw);
    } catch (e) {
      if (e instanceof NetworkSettingError) throw new Invalid(e.message);
      throw e;
    }
  };
}

/** HTTPS_PROXY or HTTP_PROXY (either case). Secret: the URL may hold a password, so it is never echoed. */
function proxyUrl(variable: 'HTTPS_PROXY' | 'HTTP_PROXY', meaning: string): Setting<ProxyUrl | undefined> {
  return {
    env: variable,
    aliases: [variable.toLowerCase()],
    origin: 'aws',
    default: undefined,
    defaultText: '—',
    allowed:
      variable === 'HTTPS_PROXY'
        ? 'a proxy URL: http://[user:password@]host[:port], or https://...'
        : 'an http:// proxy URL: http://[user:password@]host[:port]',
    meaning,
    secret: true,
    parse: network((raw) => {
      const p = parseProxyUrl(raw, variable);
      if (variable === 'HTTP_PROXY' && p.protocol !== 'http:') {
        throw new NetworkSettingError(
          'must be an http:// proxy (plain-http endpoints are sent through it as they are)',
        );
      }
      return p;
    }),
  };
}

/** Every setting, in the order the docs list them. */
export const SETTINGS = {
  // --- The official extension's variables.
  cacheEnabled: bool({
    env: 'PARAMETERS_SECRETS_EXTENSION_CACHE_ENABLED',
    origin: 'official',
    default: true,
    meaning: 'false: every request goes upstream',
  }),
  cacheSize: int({
    env: 'PARAMETERS_SECRETS_EXTENSION_CACHE_SIZE',
    toml: `${SM}.cache.cache_size`,
    flat: 'cache_size',
    origin: 'official',
    min: 0,
    max: 100_000,
    default: 1000,
    meaning: 'most items held (0 disables the cache); the original caps it at 1000',
  }),
  ssmTtl: int({
    env: 'SSM_PARAMETER_STORE_TTL',
    origin: 'official',
    min: 0,
    max: MAX_TTL_SECONDS,
    default: 300,
    defaultText: 'PARAMETERS_SECRETS_EXTENSION_TTL_SECS, else 300',
    meaning: 'seconds an SSM parameter stays cached (0: not cached); the original clamps at 300',
  }),
  secretsTtl: int({
    env: 'SECRETS_MANAGER_TTL',
    origin: 'official',
    min: 0,
    max: MAX_TTL_SECONDS,
    default: 300,
    defaultText: 'PARAMETERS_SECRETS_EXTENSION_TTL_SECS, else 300',
    meaning: 'seconds a secret stays cached (0: not cached); the original clamps at 300',
  }),
  ssmTimeout: int({
    env: 'SSM_PARAMETER_STORE_TIMEOUT_MILLIS',
    origin: 'official',
    min: 0,
    max: 2_147_483_647,
    default: 0,
    meaning: 'upstream timeout per SSM attempt, ms (0: none of your choosing; a 10 s ceiling still applies)',
  }),
  secretsTimeout: int({
    env: 'SECRETS_MANAGER_TIMEOUT_MILLIS',
    origin: 'official',
    min: 0,
    max: 2_147_483_647,
    default: 0,
    meaning: 'upstream timeout per Secrets Manager attempt, ms (0: none of your choosing)',
  }),
  port: int({
    env: 'PARAMETERS_SECRETS_EXTENSION_HTTP_PORT',
    toml: `${SM}.http_port`,
    flat: 'http_port',
    origin: 'official',
    min: 1,
    max: 65535,
    default: 2773,
    meaning: 'the loopback port pscache listens on',
  }),
  maxConnections: int({
    env: 'PARAMETERS_SECRETS_EXTENSION_MAX_CONNECTIONS',
    origin: 'official',
    min: 1,
    max: 1000,
    default: 3,
    meaning: 'outbound sockets per upstream endpoint (a service in a Region), shared by every role',
  }),
  logLevel: oneOf<LogLevel>(
    {
      env: 'PARAMETERS_SECRETS_EXTENSION_LOG_LEVEL',
      toml: 'logging.log_level',
      flat: 'log_level',
      origin: 'official',
      default: 'info',
      defaultText: 'AWS_LAMBDA_LOG_LEVEL, else info',
      meaning: 'how much pscache logs (to stderr); secret values and tokens never',
    },
    LOG_LEVELS,
    'debug, info, warn, error, none',
  ),

  // --- pscache's own (names from the source article where it has them).
  ttl: int({
    env: 'PARAMETERS_SECRETS_EXTENSION_TTL_SECS',
    toml: `${SM}.cache.ttl_seconds`,
    flat: 'ttl_seconds',
    origin: 'pscache',
    min: 0,
    max: MAX_TTL_SECONDS,
    default: 300,
    meaning: "the article's single TTL: applies to both services where the per-service variable is unset",
  }),
  maxCacheSize: int({
    env: 'PARAMETERS_SECRETS_EXTENSION_MAX_CACHE_SIZE',
    origin: 'pscache',
    min: 1,
    max: 1_048_576,
    default: 1000,
    meaning:
      "most megabytes of cached data (the article's name); at most half of the function memory in Lambda",
  }),
  prefetch: {
    env: 'PARAMETERS_SECRETS_EXTENSION_PREFETCH',
    origin: 'pscache',
    default: [],
    defaultText: '—',
    allowed: 'comma list of ssm:NAME, secretsmanager:ID and ssm-path:/PATH/',
    meaning: 'items fetched at start, batched; ssm-path: every parameter under the path, recursively',
    parse: parsePrefetch,
  } satisfies Setting<PrefetchItem[]>,
  staleIfError: int({
    env: 'PARAMETERS_SECRETS_EXTENSION_STALE_IF_ERROR',
    origin: 'pscache',
    min: 0,
    max: 86_400,
    default: 300,
    meaning: 'seconds past expiry an entry may still be served while upstream fails transiently (0: off)',
  }),
  staleWait: int({
    env: 'PARAMETERS_SECRETS_EXTENSION_STALE_WAIT_MILLIS',
    origin: 'pscache',
    min: 0,
    max: 60_000,
    default: 1000,
    meaning:
      'stale first: how long a read of an expired entry waits for its refresh before it gets the stale value, ms (0: it waits for the refresh)',
  }),
  maxInbound: int({
    env: 'PARAMETERS_SECRETS_EXTENSION_MAX_INBOUND_CONNECTIONS',
    toml: `${SM}.max_conn`,
    flat: 'max_conn',
    origin: 'pscache',
    min: 1,
    max: 65535,
    default: 1024,
    meaning: 'concurrent client connections; beyond it, 429',
  }),
  maxOutbound: int({
    env: 'PARAMETERS_SECRETS_EXTENSION_MAX_OUTBOUND_CONNECTIONS',
    origin: 'pscache',
    min: 2,
    max: 1000,
    default: 64,
    meaning: 'outbound sockets to AWS at once, every endpoint, role and Region together',
  }),
  batchWindow: int({
    env: 'PARAMETERS_SECRETS_EXTENSION_BATCH_WINDOW_MILLIS',
    origin: 'pscache',
    min: 0,
    max: 100,
    default: 2,
    meaning: 'how long a miss waits for others to share one batch call, ms (0: batching off)',
  }),
  crossRegion: bool({
    env: 'PARAMETERS_SECRETS_EXTENSION_CROSS_REGION',
    origin: 'pscache',
    default: true,
    meaning: 'an ARN naming another Region is read from that Region (false: always the configured Region)',
  }),
  token: {
    env: 'PARAMETERS_SECRETS_EXTENSION_TOKEN',
    origin: 'pscache',
    default: undefined,
    defaultText: '—',
    allowed:
      'a value of 16 or more characters, or a file: URL (file:///path) of a regular file of at most 4 KB',
    meaning:
      'the token clients must send; read before the variables of PARAMETERS_SECRETS_EXTENSION_TOKEN_VARIABLES',
    parse: (raw: string) => raw,
    secret: true,
  } satisfies Setting<string | undefined>,

  emf: bool({
    env: 'PARAMETERS_SECRETS_EXTENSION_EMF',
    origin: 'pscache',
    default: true,
    meaning: 'in Lambda, CloudWatch Embedded Metric Format lines on stdout (false: none)',
  }),
  emfInterval: int({
    env: 'PARAMETERS_SECRETS_EXTENSION_EMF_INTERVAL_SECS',
    origin: 'pscache',
    min: 0,
    max: 86_400,
    default: 60,
    meaning: 'at most one EMF line this often while invocations arrive, and one at SHUTDOWN (0: only then)',
  }),
  emfNamespace: {
    env: 'PARAMETERS_SECRETS_EXTENSION_EMF_NAMESPACE',
    origin: 'pscache',
    default: 'pscache',
    allowed: '1 to 255 of A-Z a-z 0-9 . - _ / # : and space, not starting with AWS/',
    meaning: 'the CloudWatch namespace of the EMF metrics',
    parse(raw: string) {
      const t = raw.trim();
      if (!/^[A-Za-z0-9 ._\-/#:]{1,255}$/.test(t) || t.startsWith('AWS/')) {
        throw new Invalid(
          'must be 1 to 255 of A-Z a-z 0-9 . - _ / # : and space, not starting with AWS/ (CloudWatch namespaces)',
        );
      }
      return t;
    },
  } satisfies Setting<string>,
  emfDimensions: {
    env: 'PARAMETERS_SECRETS_EXTENSION_EMF_DIMENSIONS',
    origin: 'pscache',
    default: undefined,
    defaultText: 'FunctionName=<AWS_LAMBDA_FUNCTION_NAME>',
    allowed: 'comma list of Name=value (1 to 30; names of A-Z a-z 0-9 _ . -)',
    meaning: 'the dimensions of the EMF metrics, replacing the default',
    parse: parseDimensions,
  } satisfies Setting<ReadonlyArray<readonly [string, string]> | undefined>,
  metricsAddress: {
    env: 'PARAMETERS_SECRETS_EXTENSION_METRICS_ADDRESS',
    origin: 'pscache',
    default: undefined,
    defaultText: '— (off)',
    allowed: 'HOST:PORT, such as 0.0.0.0:9102 or [::]:9102',
    meaning:
      'a second listener serving only GET /metrics (Prometheus), without the token, for a scraper outside the pod or host',
    parse: parseAddress,
  } satisfies Setting<{ host: string; port: number } | undefined>,

  // --- The Workload Credentials Provider's, under pscache's names where they have variables.
  tokenVariables: list(
    {
      env: 'PARAMETERS_SECRETS_EXTENSION_TOKEN_VARIABLES',
      toml: `${SM}.security.ssrf_env_variables`,
      flat: 'ssrf_env_variables',
      origin: 'provider',
      default: ['AWS_TOKEN', 'AWS_SESSION_TOKEN', 'AWS_CONTAINER_AUTHORIZATION_TOKEN'],
      meaning:
        'variables holding the token (a value or a file: URL), tried in order after PARAMETERS_SECRETS_EXTENSION_TOKEN; never one that holds configuration (AWS_REGION, HOME, PARAMETERS_SECRETS_EXTENSION_*...: see The token below the table)',
    },
    { pattern: /^[A-Za-z_][A-Za-z0-9_]{0,127}$/, what: 'variable name', refuse: nonSecretVariable },
  ),
  tokenHeaders: list(
    {
      env: 'PARAMETERS_SECRETS_EXTENSION_TOKEN_HEADERS',
      toml: `${SM}.security.ssrf_headers`,
      flat: 'ssrf_headers',
      origin: 'provider',
      default: ['X-Aws-Parameters-Secrets-Token', 'X-Vault-Token'],
      meaning: 'request headers that carry the token (any case); every one a request sends must match',
    },
    { pattern: /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,256}$/, what: 'header name' },
  ),
  maxRoles: int({
    env: 'PARAMETERS_SECRETS_EXTENSION_MAX_ROLES',
    toml: `${SM}.max_roles`,
    flat: 'max_roles',
    origin: 'provider',
    min: 1,
    max: 20,
    default: 20,
    meaning: 'roles live at once for roleArn reads; a new role beyond that gets 400',
  }),
  pathPrefix: {
    env: 'PARAMETERS_SECRETS_EXTENSION_PATH_PREFIX',
    toml: `${SM}.path_prefix`,
    flat: 'path_prefix',
    origin: 'provider',
    default: DEFAULT_PATH_PREFIX,
    allowed: 'a path starting and ending with /, such as /v1/, that no other route starts with',
    meaning: 'path-style secret reads: PREFIX + the URL-encoded secret id',
    parse(raw: string) {
      const t = raw.trim();
      if (!/^\/([A-Za-z0-9._~-]+\/)+$/.test(t) || t.length > 256) {
        throw new Invalid(
          'must start and end with / and hold only letters, digits and . _ ~ - between, such as /v1/',
        );
      }
      return t;
    },
  } satisfies Setting<string>,
  enabled: fileOnly({
    toml: `${SM}.enabled`,
    origin: 'provider',
    default: true,
    allowed: 'true',
    meaning: 'must stay true: the Secrets Manager capability is what pscache serves',
    fromFile(v) {
      if (v !== true) throw new Invalid('must be true: pscache has no other capability to run instead');
      return true;
    },
  }),
  logToFile: fileOnly({
    toml: 'logging.log_to_file',
    flat: 'log_to_file',
    origin: 'provider',
    default: true,
    allowed: 'true or false',
    meaning: 'accepted and ignored: pscache logs to stderr',
    fromFile: (v) => parseBool(String(v)),
  }),
  ignoreTransientErrors: fileOnly({
    toml: `${SM}.ignore_transient_errors`,
    flat: 'ignore_transient_errors',
    origin: 'provider',
    default: true,
    allowed: 'true or false',
    meaning: 'false turns stale-if-error off (as STALE_IF_ERROR=0) unless that variable is set',
    fromFile: (v) => parseBool(String(v)),
  }),
  validateCredentials: bool({
    env: 'PARAMETERS_SECRETS_EXTENSION_VALIDATE_CREDENTIALS',
    toml: `${SM}.validate_credentials`,
    flat: 'validate_credentials',
    origin: 'provider',
    default: false,
    defaultText: "false; true with a --config file (the provider's default)",
    meaning:
      'STS GetCallerIdentity before serving: a non-transient failure stops start-up (exit 1); skipped for a credentials file',
  }),
  credentialsFile: {
    env: 'PARAMETERS_SECRETS_EXTENSION_CREDENTIALS_FILE',
    toml: `${SM}.credentials_file_path`,
    flat: 'credentials_file_path',
    origin: 'provider',
    default: undefined,
    defaultText: '—',
    allowed: 'the path of an AWS credentials file',
    meaning:
      'credentials from this file (AWS_PROFILE or [default], with aws_session_token) instead of any other source; re-read when it changes, looked at every 5 minutes',
    parse(raw: string) {
      const t = raw.trim();
      if (t.length > 4096) throw new Invalid('must be a path of at most 4096 characters');
      return t;
    },
  } satisfies Setting<string | undefined>,
  prefetchSecrets: fileOnly<PrefetchItem[]>({
    toml: `${SM}.prefetch.secrets`,
    flat: 'prefetch.secrets',
    origin: 'provider',
    default: [],
    defaultText: '—',
    allowed: 'a list of { secret_id, role_arn? }',
    meaning: 'secrets fetched at start (with role_arn: through that role); added to PREFETCH',
    fromFile: (v) =>
      secretRecords(v).map((r) => ({
        service: 'secretsmanager' as const,
        id: r.secret_id,
        ...(r.role_arn !== undefined ? { roleArn: r.role_arn } : {}),
      })),
  }),
  prefetchTags: fileOnly<PrefetchTag[]>({
    toml: `${SM}.prefetch.filter_tags`,
    flat: 'prefetch.filter_tags',
    origin: 'provider',
    default: [],
    defaultText: '—',
    allowed: 'a list of { key, role_arn? }',
    meaning: 'fetch at start every secret carrying this tag key (any value)',
    fromFile: (v) =>
      tagRecords(v).map((r) => ({
        key: r.key,
        ...(r.role_arn !== undefined ? { roleArn: r.role_arn } : {}),
      })),
  }),
  prefetchBufferRatio: fileOnly({
    toml: `${SM}.prefetch.cache_buffer_ratio`,
    flat: 'prefetch.cache_buffer_ratio',
    origin: 'provider',
    default: 0.8,
    allowed: 'a number from 0.1 to 1.0',
    meaning: 'most of the cache that prefetching may fill',
    fromFile(v) {
      if (typeof v !== 'number' || !(v >= 0.1 && v <= 1))
        throw new Invalid('must be a number from 0.1 to 1.0');
      return v;
    },
  }),
  prefetchJitter: fileOnly({
    toml: `${SM}.prefetch.max_jitter_seconds`,
    flat: 'prefetch.max_jitter_seconds',
    origin: 'provider',
    default: 0,
    allowed: 'a whole number from 0 to 10',
    meaning: 'prefetching waits a random 0..this many seconds first',
    fromFile(v) {
      if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 10) {
        throw new Invalid('must be a whole number from 0 to 10');
      }
      return v;
    },
  }),

  // --- Standard AWS variables pscache validates.
  region: {
    env: 'AWS_REGION',
    aliases: ['AWS_DEFAULT_REGION'],
    toml: `${SM}.region`,
    flat: 'region',
    origin: 'aws',
    default: undefined,
    defaultText: '—',
    allowed: 'a Region name such as us-east-1',
    meaning: 'the Region of your parameters and secrets; needed unless every endpoint is overridden',
    parse(raw: string) {
      const t = raw.trim();
      if (!/^[a-z0-9-]{1,64}$/.test(t)) throw new Invalid('must be a Region name such as us-east-1');
      return t;
    },
  } satisfies Setting<string | undefined>,
  endpoint: httpUrl({ env: 'AWS_ENDPOINT_URL', origin: 'aws', meaning: 'endpoint for every service' }),
  endpointSsm: httpUrl({ env: 'AWS_ENDPOINT_URL_SSM', origin: 'aws', meaning: 'endpoint for SSM' }),
  endpointSecrets: httpUrl({
    env: 'AWS_ENDPOINT_URL_SECRETS_MANAGER',
    origin: 'aws',
    meaning: 'endpoint for Secrets Manager',
  }),
  endpointSts: httpUrl({
    env: 'AWS_ENDPOINT_URL_STS',
    origin: 'aws',
    meaning: 'endpoint for STS (AssumeRole, for roleArn reads)',
  }),
  httpsProxy: proxyUrl(
    'HTTPS_PROXY',
    'proxy for https:// endpoints (every AWS endpoint), through CONNECT; never for loopback',
  ),
  httpProxy: proxyUrl(
    'HTTP_PROXY',
    'proxy for http:// endpoints (an emulator, LocalStack); never for loopback',
  ),
  noProxy: {
    env: 'NO_PROXY',
    aliases: ['no_proxy'],
    origin: 'aws',
    default: [],
    defaultText: '—',
    allowed: 'comma list of hosts, .domains, IP addresses and CIDR ranges (each may end in :port), or *',
    meaning: 'endpoints reached directly, not through HTTPS_PROXY or HTTP_PROXY',
    parse: network(parseNoProxy),
    blankIsSet: true,
  } satisfies Setting<readonly NoProxyRule[]>,
  caBundle: {
    env: 'AWS_CA_BUNDLE',
    origin: 'aws',
    default: undefined,
    defaultText: '—',
    allowed: 'the path of a PEM file of one or more CA certificates',
    meaning:
      "CAs trusted for AWS endpoints and proxies besides Node's own (a private CA, a TLS-inspecting proxy)",
    parse: (raw: string) => raw.trim(),
  } satisfies Setting<string | undefined>,
  useFips: bool({ env: 'AWS_USE_FIPS_ENDPOINT', origin: 'aws', default: false, meaning: 'FIPS endpoints' }),
  useDualstack: bool({
    env: 'AWS_USE_DUALSTACK_ENDPOINT',
    origin: 'aws',
    default: false,
    meaning: 'dual-stack (IPv6) endpoints',
  }),
  lambdaLogLevel: oneOf<LogLevel>(
    {
      env: 'AWS_LAMBDA_LOG_LEVEL',
      origin: 'aws',
      default: 'info',
      defaultText: '—',
      meaning: "Lambda's log level, used where PARAMETERS_SECRETS_EXTENSION_LOG_LEVEL is unset",
    },
    LAMBDA_LEVELS,
    'TRACE, DEBUG, INFO, WARN, ERROR, FATAL',
  ),
  lambdaLogFormat: oneOf<LogFormat>(
    { env: 'AWS_LAMBDA_LOG_FORMAT', origin: 'aws', default: 'text', meaning: 'JSON: log lines are JSON' },
    { json: 'json', text: 'text' },
    'JSON or Text',
  ),
  functionMemory: int({
    env: 'AWS_LAMBDA_FUNCTION_MEMORY_SIZE',
    origin: 'aws',
    min: 1,
    max: 1_048_576,
    default: 0,
    defaultText: '—',
    meaning: "set by Lambda: the function's memory (MB), which caps MAX_CACHE_SIZE at half",
  }),
};

export type SettingId = keyof typeof SETTINGS;

/** The type of a setting's value (its default included). */
export type ValueOf<K extends SettingId> =
  | ReturnType<(typeof SETTINGS)[K]['parse']>
  | (typeof SETTINGS)[K]['default'];

/** A value from a --config file, under the key (with its table path) it was written as. */
export interface FileValue {
  key: string;
  value: unknown;
}

/** A --config file, read and checked against the schema (src/config/file.ts); values are parsed by loadConfig. */
export interface ConfigFile {
  /** As given on the command line, for messages. */
  path: string;
  values: Map<SettingId, FileValue>;
  /** Keys accepted but not acted on, worth a line in the log. */
  notes: string[];
}

/** The settings as a list, for the docs and the --config schema. */
export const SETTING_LIST = Object.entries(SETTINGS) as Array<[SettingId, Setting<unknown>]>;

/**
 * Whether a --config file's [pscache] table takes this setting under its variable's name: every setting
 * with a variable that the provider's schema has no key for, except the token and AWS's own variables.
 */
export function inPscacheTable(s: Setting<unknown>): s is Setting<unknown> & { env: string } {
  return s.env !== undefined && s.toml === undefined && !s.secret && s.origin !== 'aws';
}
