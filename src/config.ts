// Environment (and an optional --config file) -> validated Config. The only module that reads environment
// variables; every name, default and limit comes from the table in src/config/settings.ts.
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import { FALLBACK_SIGNING_REGION, type PartitionRule, partitionRule } from './aws/endpoints.ts';
import type { NetworkConfig, ProxyUrl } from './aws/network.ts';
import { roleSessionName } from './aws/session-name.ts';
import type { AwsConfig, Service } from './aws/types.ts';
import { nodeCrypto, nodeOs } from './builtins.ts';
import { findToken, type TokenFound, TokenSourceError } from './client/token-source.ts';
import {
  ConfigError,
  type ConfigFile,
  Invalid,
  type LogFormat,
  type LogLevel,
  type PrefetchItem,
  type PrefetchTag,
  SETTING_LIST,
  SETTINGS,
  type Setting,
  type SettingId,
  type ValueOf,
} from './config/settings.ts';
import { outsidePartition } from './items.ts';
import { pathPrefixCollision } from './server/paths.ts';

export type { AwsConfig, Service };
export {
  ConfigError,
  type ConfigFile,
  type LogFormat,
  type LogLevel,
  type PrefetchItem,
  type PrefetchTag,
  SETTINGS,
};

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
  /** Outbound keep-alive sockets per endpoint host (a service in a Region), shared by every role. */
  maxConnections: number;
  /** Outbound sockets over every endpoint host together. */
  maxOutboundConnections: number;
  /** Proxies (HTTPS_PROXY, HTTP_PROXY, NO_PROXY) and extra CAs (AWS_CA_BUNDLE). */
  network: NetworkConfig;
  logLevel: LogLevel;
  logFormat: LogFormat;
  /** Fetched at start: PARAMETERS_SECRETS_EXTENSION_PREFETCH, then the file's prefetch.secrets (with roleArn). */
  prefetch: PrefetchItem[];
  /** Tag keys whose secrets are fetched at start (the file's prefetch.filter_tags). */
  prefetchTags: PrefetchTag[];
  /** Most of the cache (0.1..1) that prefetching may fill. */
  prefetchBufferRatio: number;
  /** Prefetching first waits a random 0..this many milliseconds. */
  prefetchMaxJitterMs: number;
  /** How long past expiry an entry may be served while upstream fails transiently (ms); 0 = off. */
  staleIfErrorMs: number;
  /** Stale first: how long a read holding a stale value waits for its refresh (ms); 0 = as long as it takes. */
  staleWaitMs: number;
  maxInboundConnections: number;
  /** How long a miss waits for others to share one batch call (ms); 0 = batching off. */
  batchWindowMs: number;
  /** Expected token value; undefined when no source is set. */
  token: string | undefined;
  /** Name of the variable the token came from (never the value). */
  tokenSource: string | undefined;
  /** Variables read for the token after PARAMETERS_SECRETS_EXTENSION_TOKEN, in order. */
  tokenVariables: string[];
  /** Request headers that carry the token, as configured (compared case-insensitively). */
  tokenHeaders: string[];
  /** Path-style secret reads: this prefix + the URL-encoded secret id. Starts and ends with `/`. */
  pathPrefix: string;
  /** Most roles live at once for roleArn reads. */
  maxRoles: number;
  /** STS GetCallerIdentity before serving (validate_credentials). */
  validateCredentials: boolean;
  /** The provider's ignore_transient_errors: a transient validation failure only warns. */
  ignoreTransientErrors: boolean;
  /** An ARN naming another Region is read from that Region. */
  crossRegion: boolean;
  aws: AwsConfig;
  lambda: {
    /** host:port of the Lambda Runtime API when running as an extension. */
    runtimeApi: string | undefined;
    snapStart: boolean;
    functionMemoryMb: number | undefined;
  };
  /** CloudWatch Embedded Metric Format lines in Lambda. */
  emf: {
    enabled: boolean;
    /** 0: only at SHUTDOWN. */
    intervalMs: number;
    namespace: string;
    dimensions: ReadonlyArray<readonly [string, string]>;
  };
  /** The second, metrics-only listener; undefined when off. */
  metricsAddress: { host: string; port: number } | undefined;
  /** Notes worth logging at start (clamps, ignored keys). Never contain values of secrets. */
  notes: string[];
  /** Worth a WARN line at start (a token file others can write). Never contain values of secrets. */
  warnings: string[];
}

type Env = Record<string, string | undefined>;

/** Reads an env var; empty or all-blank values count as unset (`VAR=` in a shell or console). */
function read(env: Env, name: string): string | undefined {
  const v = env[name];
  return v === undefined || v.trim() === '' ? undefined : v;
}

/** Where a value came from: a variable, or a key of the --config file. */
interface Found<T> {
  value: T;
  variable?: string;
  raw?: string;
  fileKey?: string;
}

/** Looks settings up: the variable (then its aliases), else the --config file, else the default. */
class Reader {
  constructor(
    private readonly env: Env,
    private readonly file: ConfigFile | undefined,
  ) {}

  find<K extends SettingId>(id: K): Found<ValueOf<K>> | undefined {
    const s = SETTINGS[id] as Setting<ValueOf<K>>;
    for (const name of s.env === undefined ? [] : [s.env, ...(s.aliases ?? [])]) {
      const raw = s.blankIsSet ? this.env[name] || undefined : read(this.env, name);
      if (raw === undefined) continue;
      try {
        return { value: s.parse(raw), variable: name, raw };
      } catch (e) {
        throw this.rethrow(e, { variable: name, raw }, s.secret);
      }
    }
    const f = this.file?.values.get(id);
    if (f === undefined) return undefined;
    const at = { fileKey: f.key, raw: shown(f.value) };
    try {
      return { value: s.fromFile ? s.fromFile(f.value) : s.parse(scalarText(f.value, s)), ...at };
    } catch (e) {
      throw this.rethrow(e, at);
    }
  }

  get<K extends SettingId>(id: K): ValueOf<K> {
    const found = this.find(id);
    return found === undefined ? (SETTINGS[id].default as ValueOf<K>) : found.value;
  }

  /** The error for a value that parsed but cannot be used, naming where it came from. */
  invalid(at: Omit<Found<unknown>, 'value'>, allowed: string): ConfigError {
    if (at.fileKey !== undefined && this.file) {
      return ConfigError.inFile(this.file.path, at.fileKey, `= ${at.raw} is invalid: ${allowed}`);
    }
    return new ConfigError(at.variable ?? '?', at.raw, allowed);
  }

  private rethrow(e: unknown, at: Omit<Found<unknown>, 'value'>, secret = false): unknown {
    if (!(e instanceof Invalid)) return e;
    if (at.fileKey === undefined) return new ConfigError(at.variable ?? '?', at.raw, e.message, !secret);
    return this.invalid(at, e.message);
  }
}

/** A file scalar as the text a variable would hold; anything else is refused with what is allowed. */
function scalarText(value: unknown, s: Setting<unknown>): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'boolean' || (typeof value === 'number' && Number.isFinite(value)))
    return String(value);
  throw new Invalid(`must be ${s.allowed}`);
}

/** A file value as an error message shows it (TOML-like: strings quoted, numbers and booleans bare). */
function shown(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 200 ? `${text.slice(0, 200)}...` : text;
}

/** The token (src/client/token-source.ts: the same rules as the client), or a ConfigError naming the variable. */
function token(env: Env, variables: readonly string[]): TokenFound | undefined {
  try {
    return findToken(env, variables, 'daemon');
  } catch (e) {
    if (!(e instanceof TokenSourceError)) throw e;
    throw new ConfigError(e.variable, undefined, e.message, false, e.message);
  }
}

/** A proxy as configured, its name in logs being the variable it came from (`https_proxy` or `HTTPS_PROXY`). */
function proxy(found: { value: ProxyUrl | undefined; variable?: string } | undefined): ProxyUrl | undefined {
  const p = found?.value;
  if (!p || found.variable === undefined) return p;
  return { ...p, shown: p.shown.replace(/ \([A-Za-z_]+\)$/, ` (${found.variable})`) };
}

/** Far above any real bundle (the system's whole store is ~200 KB): AWS_CA_BUNDLE=/dev/zero must not fill memory. */
export const MAX_CA_BUNDLE_BYTES = 16 * 1024 * 1024;

/**
 * AWS_CA_BUNDLE, read at start: a missing file, one that is not a regular file (a FIFO would hold the start
 * forever, /dev/zero fill memory), one over MAX_CA_BUNDLE_BYTES, or one without a certificate stops
 * start-up naming the variable. Symbolic links are followed (system bundles are links).
 */
function caBundle(r: Reader): NetworkConfig['caBundle'] {
  const found = r.find('caBundle');
  if (found?.value === undefined) return undefined;
  const path = found.value;
  const refuse = (allowed: string) => new ConfigError(found.variable ?? 'AWS_CA_BUNDLE', path, allowed);
  const code = (e: unknown) => (e as NodeJS.ErrnoException).code ?? 'error';
  let fd: number;
  try {
    // O_NONBLOCK: opening a FIFO without a writer returns at once instead of waiting for one.
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (e) {
    throw refuse(`the file could not be read (${code(e)})`);
  }
  let pem: string;
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) {
      throw refuse(`it is ${st.isDirectory() ? 'a directory' : 'not a regular file'}: name a PEM file`);
    }
    const tooLarge = () =>
      refuse(`the file is larger than ${MAX_CA_BUNDLE_BYTES / 1024 / 1024} MiB: name a PEM file of CAs`);
    if (st.size > MAX_CA_BUNDLE_BYTES) throw tooLarge();
    // Read into a bounded buffer, not to the end: a file can grow after fstat, and some regular files
    // (/proc, FUSE) say size 0 whatever they hold.
    const chunk = Buffer.allocUnsafe(64 * 1024);
    const chunks: Buffer[] = [];
    let n = 0;
    for (;;) {
      let got: number;
      try {
        got = readSync(fd, chunk, 0, chunk.length, null);
      } catch (e) {
        throw refuse(`the file could not be read (${code(e)})`);
      }
      if (got === 0) break;
      n += got;
      if (n > MAX_CA_BUNDLE_BYTES) throw tooLarge();
      chunks.push(Buffer.from(chunk.subarray(0, got)));
    }
    pem = Buffer.concat(chunks, n).toString('utf8');
  } finally {
    closeSync(fd);
  }
  const blocks = pemCertificates(pem);
  if (blocks.length === 0) throw refuse('the file holds no PEM certificate (-----BEGIN CERTIFICATE-----)');
  const { X509Certificate } = nodeCrypto();
  blocks.forEach((block, i) => {
    try {
      new X509Certificate(block);
    } catch {
      throw refuse(`certificate ${i + 1} of ${blocks.length} in the file is malformed`);
    }
  });
  return { path, pem: blocks.join('\n') };
}

const PEM_BEGIN = '-----BEGIN CERTIFICATE-----';
const PEM_END = '-----END CERTIFICATE-----';

/**
 * The certificate blocks of a PEM text, each from a BEGIN line to the next END line, in one pass: a
 * regular expression for this backtracks over every BEGIN without an END (1 MiB of them took 20 s).
 */
function pemCertificates(text: string): string[] {
  const blocks: string[] = [];
  for (let from = text.indexOf(PEM_BEGIN); from !== -1; ) {
    const end = text.indexOf(PEM_END, from + PEM_BEGIN.length + 1);
    if (end === -1) break;
    blocks.push(text.slice(from, end + PEM_END.length));
    from = text.indexOf(PEM_BEGIN, end + PEM_END.length);
  }
  return blocks;
}

function networkConfig(r: Reader): NetworkConfig {
  const https = proxy(r.find('httpsProxy'));
  const http = proxy(r.find('httpProxy'));
  return {
    proxy: https || http ? { https, http, noProxy: r.get('noProxy') } : undefined,
    caBundle: caBundle(r),
  };
}

function awsConfig(env: Env, r: Reader): AwsConfig {
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
  const fallback = r.get('endpoint');
  const aws: AwsConfig = {
    region: r.get('region'),
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
      ssm: r.get('endpointSsm') ?? fallback,
      secretsmanager: r.get('endpointSecrets') ?? fallback,
      sts: r.get('endpointSts') ?? fallback,
    },
    roleSessionName: roleSessionName(read(env, 'AWS_LAMBDA_FUNCTION_NAME')?.trim() ?? nodeOs().hostname()),
    useFips: r.get('useFips'),
    useDualstack: r.get('useDualstack'),
    profile: read(env, 'AWS_PROFILE'),
    credentialsFile: r.get('credentialsFile'),
  };
  for (const service of ['ssm', 'secretsmanager'] as const) {
    if (aws.region === undefined && aws.endpoints[service] === undefined) {
      throw new ConfigError(
        'AWS_REGION',
        undefined,
        'set AWS_REGION (or AWS_DEFAULT_REGION) to the Region of your parameters and secrets, e.g. us-east-1',
      );
    }
  }
  return aws;
}

/**
 * Prefetch ARNs (items and roles) of another partition than the configured Region's, or naming a Region
 * outside it, stop start-up: reads never carry the credentials there (the HTTP routes refuse them too).
 */
function checkPartition(r: Reader, rule: PartitionRule): void {
  for (const id of ['prefetch', 'prefetchSecrets', 'prefetchTags'] as const) {
    const found = r.find(id);
    for (const item of found?.value ?? []) {
      const why =
        ('id' in item ? outsidePartition(item.id, item.path ? undefined : item.service, rule) : undefined) ??
        (item.roleArn !== undefined ? outsidePartition(item.roleArn, undefined, rule) : undefined);
      if (found && why !== undefined) throw r.invalid(found, `an ARN in it ${why}`);
    }
  }
}

/** PARAMETERS_SECRETS_EXTENSION_LOG_LEVEL (or the file's log_level), else AWS_LAMBDA_LOG_LEVEL, else info. */
function logLevel(r: Reader): LogLevel {
  return r.find('logLevel')?.value ?? r.get('lambdaLogLevel');
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
  const r = new Reader(env, undefined);
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
    logLevel: fallback(() => logLevel(r), 'info'),
    logFormat: fallback(() => r.get('lambdaLogFormat'), 'text'),
  };
}

/** `serve` needs a token source; the error says how to set one. */
export function requireToken(config: Config): string {
  if (config.token === undefined) {
    throw new ConfigError(
      SETTINGS.token.env,
      undefined,
      `no token source: set PARAMETERS_SECRETS_EXTENSION_TOKEN to a value or file:///path (also read, in order: ${config.tokenVariables.join(', ')}; inside Lambda, AWS_SESSION_TOKEN is set)`,
    );
  }
  return config.token;
}

/**
 * Turns an environment (and a --config file) into a Config, or throws ConfigError naming the first bad
 * variable or key. Per setting, a variable overrides the file; then a per-service TTL overrides the single
 * TTL, wherever each came from.
 */
export function loadConfig(env: Env, file?: ConfigFile): Config {
  const r = new Reader(env, file);
  // Every setting is checked, including those accepted and ignored (the provider's log_to_file).
  for (const [id] of SETTING_LIST) r.find(id);
  const notes: string[] = [...(file?.notes ?? [])];
  const cacheSize = r.get('cacheSize');
  const cacheEnabled = r.get('cacheEnabled') && cacheSize > 0;

  const sharedTtl = r.get('ttl');
  const ssmTtl = r.find('ssmTtl')?.value ?? sharedTtl;
  const smTtl = r.find('secretsTtl')?.value ?? sharedTtl;

  const functionMemoryMb = r.find('functionMemory')?.value;
  const maxCache = r.find('maxCacheSize');
  let maxMb = maxCache?.value ?? SETTINGS.maxCacheSize.default;
  if (functionMemoryMb !== undefined && maxMb > functionMemoryMb / 2) {
    const clamped = Math.max(1, Math.floor(functionMemoryMb / 2));
    if (maxCache !== undefined) {
      notes.push(
        `${SETTINGS.maxCacheSize.env}=${maxMb} is over half the function memory; using ${clamped} MB`,
      );
    }
    maxMb = clamped;
  }

  const tokenVariables = [...r.get('tokenVariables')];
  const found = token(env, tokenVariables);
  const lambda = lambdaSettings(env);

  const prefix = r.find('pathPrefix');
  const collision = prefix && pathPrefixCollision(prefix.value);
  if (prefix && collision) throw r.invalid(prefix, `it would hide the route ${collision}`);

  const aws = awsConfig(env, r);
  checkPartition(r, partitionRule(aws.region ?? FALLBACK_SIGNING_REGION));

  // The provider's ignore_transient_errors = false means no stale serving; the variable still wins.
  const staleIfError =
    r.find('staleIfError')?.value ?? (r.get('ignoreTransientErrors') ? SETTINGS.staleIfError.default : 0);

  const network = networkConfig(r);
  const warnings = [...(found?.warnings ?? [])];
  const unusable = unusableNoProxy(r, network);
  if (unusable) warnings.push(unusable);

  return {
    port: r.get('port'),
    cacheEnabled,
    cacheSize,
    cacheMaxBytes: maxMb * 1024 * 1024,
    ttlMs: { ssm: ssmTtl * 1000, secretsmanager: smTtl * 1000 },
    timeoutMs: { ssm: r.get('ssmTimeout'), secretsmanager: r.get('secretsTimeout') },
    maxConnections: r.get('maxConnections'),
    maxOutboundConnections: r.get('maxOutbound'),
    network,
    logLevel: logLevel(r),
    logFormat: r.get('lambdaLogFormat'),
    prefetch: [...r.get('prefetch'), ...r.get('prefetchSecrets')],
    prefetchTags: [...r.get('prefetchTags')],
    prefetchBufferRatio: r.get('prefetchBufferRatio'),
    prefetchMaxJitterMs: r.get('prefetchJitter') * 1000,
    staleIfErrorMs: staleIfError * 1000,
    staleWaitMs: r.get('staleWait'),
    maxInboundConnections: r.get('maxInbound'),
    batchWindowMs: r.get('batchWindow'),
    token: found?.token,
    tokenSource:
      found === undefined ? undefined : `${found.variable}${found.file === undefined ? '' : ' (file)'}`,
    tokenVariables,
    tokenHeaders: [...r.get('tokenHeaders')],
    pathPrefix: prefix?.value ?? SETTINGS.pathPrefix.default,
    maxRoles: r.get('maxRoles'),
    // The provider validates unless told not to; pscache configured by variables alone does not (docs).
    validateCredentials: r.find('validateCredentials')?.value ?? file !== undefined,
    ignoreTransientErrors: r.get('ignoreTransientErrors'),
    crossRegion: r.get('crossRegion'),
    aws,
    lambda: {
      runtimeApi: lambda.runtimeApi,
      snapStart: lambda.snapStart,
      functionMemoryMb,
    },
    emf: {
      enabled: r.get('emf'),
      intervalMs: r.get('emfInterval') * 1000,
      namespace: r.get('emfNamespace'),
      dimensions: r.get('emfDimensions') ?? [
        ['FunctionName', read(env, 'AWS_LAMBDA_FUNCTION_NAME')?.trim() ?? 'unknown'],
      ],
    },
    metricsAddress: r.get('metricsAddress'),
    notes,
    warnings,
  };
}

/**
 * NO_PROXY entries that name no host, domain, address or range are never matched (as Go's httpproxy does,
 * which the official extension uses): said once at start when a proxy is in use, so a typo is seen.
 */
function unusableNoProxy(r: Reader, network: NetworkConfig): string | undefined {
  const entries = (network.proxy?.noProxy ?? []).flatMap((rule) =>
    rule.kind === 'unusable' ? [JSON.stringify(rule.entry.slice(0, 100))] : [],
  );
  if (entries.length === 0) return undefined;
  const variable = r.find('noProxy')?.variable ?? 'NO_PROXY';
  const shown = entries.length > 5 ? [...entries.slice(0, 5), `and ${entries.length - 5} more`] : entries;
  return `${variable}: ${shown.join(', ')} ${entries.length === 1 ? 'names' : 'name'} no host, .domain, IP address or CIDR range and will never match; every other entry applies`;
}
