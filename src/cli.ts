// Commands: serve (the daemon), dev (daemon + emulator), emulator, get, token. Bad flags and bad environment values
// exit non-zero with one line naming the flag or variable, the value and what is allowed.
import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { StoreFile } from '../packages/emulator/index.ts';
import { nodeCrypto } from './builtins.ts';
import { GET_USAGE } from './client/get-usage.ts';
import {
  type Config,
  ConfigError,
  type ConfigFile,
  lambdaSettings,
  loadConfig,
  requireToken,
  SETTINGS,
} from './config.ts';
import type { Daemon } from './daemon.ts';
import { loadDaemon } from './daemon-loader.ts';
import { parseFlags, UsageError } from './flags.ts';
import { runExtension } from './lambda/lifecycle.ts';
import { createLogger, type Logger } from './log.ts';
import { startCompleted } from './start-hooks.ts';
import { VERSION } from './version.ts';

const CONTROL_TOKEN_ENV = 'PSCACHE_EMULATOR_CONTROL_TOKEN';

const USAGE: Record<string, string> = {
  main: `pscache ${VERSION}: a local cache for SSM parameters and Secrets Manager secrets,
drop-in compatible with the AWS Parameters and Secrets Lambda Extension.

Usage:
  pscache serve [--config FILE]      run the daemon (configured by environment variables)
  pscache dev [--store FILE] [--port N] [--emulator-port N] [--control-token T] [--config FILE]
                                     run the daemon plus the built-in AWS emulator
  pscache emulator [--store FILE] [--port N] [--control-token T]
                                     run the AWS emulator alone
  pscache get parameter NAME | get secret ID [--json] ...
                                     print one value from a running daemon
  pscache token [--write FILE [--group GROUP] [--force | --if-absent]]
                                     print a new random token, or write it to FILE
  pscache --version | --help         print the version or this help
  pscache COMMAND --help             help for one command

See README.md for the HTTP API and docs/configuration.md for every setting.`,
  serve: `pscache serve [--config FILE] [--lambda-extension-name NAME]

Runs the daemon on 127.0.0.1 (and ::1) port PARAMETERS_SECRETS_EXTENSION_HTTP_PORT (default 2773).
Configuration comes from environment variables (see docs/configuration.md) and, with --config, a TOML
file in the AWS Workload Credentials Provider's schema plus a [pscache] table; variables override the
file. A token source is required: PARAMETERS_SECRETS_EXTENSION_TOKEN, else AWS_TOKEN, else
AWS_SESSION_TOKEN, else AWS_CONTAINER_AUTHORIZATION_TOKEN (each a value or file:///path).
Stops cleanly on SIGTERM or SIGINT.
When AWS_LAMBDA_RUNTIME_API is set it also runs the Lambda Extensions API lifecycle, registering as
NAME (the layer's launcher passes its own file name; default pscache); --config is not read there.
  --config FILE                  TOML configuration file (provider schema)
  --lambda-extension-name NAME   the extension's file name in /opt/extensions`,
  dev: `pscache dev [--store FILE] [--port N] [--emulator-port N] [--control-token T] [--config FILE]

Runs the daemon together with the built-in AWS emulator seeded from FILE (default: the example store
shipped with pscache), with generated credentials and a generated token (unless
PARAMETERS_SECRETS_EXTENSION_TOKEN is set), and prints ready-to-paste curl lines and the export line
that points the AWS CLI and SDKs at the emulator. No AWS account needed.
  --store FILE          emulator store (JSON)
  --port N              daemon port (default PARAMETERS_SECRETS_EXTENSION_HTTP_PORT or 2773)
  --emulator-port N     emulator port (default: any free port)
  --control-token T     the emulator's control API token (default ${CONTROL_TOKEN_ENV}, else generated)
  --config FILE         TOML configuration file, as for serve (its region and token are dev's own)`,
  emulator: `pscache emulator [--store FILE] [--port N] [--control-token T]

Runs the AWS emulator for SSM Parameter Store and Secrets Manager (AWS JSON 1.1) and STS (Query) on
127.0.0.1. Point an AWS SDK or the AWS CLI at it with --endpoint-url or AWS_ENDPOINT_URL. It accepts
any credentials (no signature check) unless started by 'pscache dev'. Its control API (/__emulator/)
wants the printed control token in the X-Emulator-Control-Token header.
  --store FILE          store to seed from (default: the example store shipped with pscache)
  --port N              port (default 2774)
  --control-token T     control API token (default ${CONTROL_TOKEN_ENV}, else generated)`,
  get: GET_USAGE,
  token: `pscache token [--write FILE [--group GROUP] [--force | --if-absent]]

Makes a random token (32 bytes, base64url) for PARAMETERS_SECRETS_EXTENSION_TOKEN. Without --write it
prints the token. With --write it writes it to FILE with mode 0600 (0640 with --group), never printing
it, and prints the line to give the daemon: PARAMETERS_SECRETS_EXTENSION_TOKEN=file:///path/to/FILE. The
file appears whole or not at all.
  --write FILE     write the token to FILE; refuses to replace an existing FILE
  --group GROUP    give FILE to GROUP (a name or a number) with mode 0640 so its members can read it;
                   needs root or membership of GROUP
  --force          replace an existing FILE with a new token
  --if-absent      keep an existing FILE and exit 0 (for service start-up scripts), but only a regular
                   file (not a link) of yours or root's that neither group nor others may write, holding
                   a usable token; anything else exits 2 naming why`,
};

type Flags = Record<string, string>;

function portFlag(flags: Flags, name: string): number | undefined {
  const v = flags[name];
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v) || Number(v) < 1 || Number(v) > 65535) {
    throw new UsageError(`${name} ${JSON.stringify(v)} is invalid: must be a whole number from 1 to 65535`);
  }
  return Number(v);
}

/** The example store shipped beside the bundle (dist/../examples) or the source (src/../examples). */
function defaultStore(): string {
  const here = typeof __dirname === 'string' ? __dirname : dirname(new URL(import.meta.url).pathname);
  for (const candidate of [
    resolve(here, '../examples/store.json'),
    resolve(here, '../../examples/store.json'),
  ]) {
    if (existsSync(candidate)) return candidate;
  }
  throw new UsageError('the example store was not found; pass --store FILE');
}

function storeFlag(flags: Flags): string {
  const s = flags['--store'];
  if (s === undefined) return defaultStore();
  if (!existsSync(s)) throw new UsageError(`--store ${JSON.stringify(s)}: no such file`);
  return resolve(s);
}

/**
 * A port another process holds, as the flag that sets it: `listen EADDRINUSE` would not say which port
 * or what to do. Anything else passes unchanged.
 */
function portInUse(e: unknown, flag: string, port: number | undefined): unknown {
  if ((e as NodeJS.ErrnoException | undefined)?.code !== 'EADDRINUSE') return e;
  const which = (e as { port?: number }).port ?? port;
  return new UsageError(
    `${which !== undefined ? `port ${which}` : 'the port'} on 127.0.0.1 is already in use (another pscache or emulator?); pass ${flag} with a free port`,
  );
}

/** Runs until a signal; returns the exit code. */
function untilSignal(stop: () => Promise<void>, log: Logger): Promise<number> {
  return new Promise((done) => {
    let stopping = false;
    const onSignal = (sig: NodeJS.Signals) => {
      if (stopping) return;
      stopping = true;
      log.info(`received ${sig}, stopping`);
      stop().then(
        () => done(0),
        () => done(1),
      );
    };
    process.once('SIGTERM', onSignal);
    process.once('SIGINT', onSignal);
  });
}

const SIDECAR_GRACE_MS = 3000;

/** The --config file, read and checked; undefined without the flag. The TOML parser loads only here. */
async function configFile(flags: Flags): Promise<ConfigFile | undefined> {
  const path = flags['--config'];
  if (path === undefined) return undefined;
  const { readConfigFile } = await import('./config/file.ts');
  return readConfigFile(path);
}

async function serve(args: string[]): Promise<number> {
  const flags = parseFlags(args, ['--config', '--lambda-extension-name']);
  const name = flags['--lambda-extension-name'] ?? 'pscache';
  // A file name, sent as a header: no path separators, no control characters.
  if (!/^[\x20-\x7e]{1,255}$/.test(name) || name.includes('/') || name.trim() !== name) {
    throw new UsageError(
      `--lambda-extension-name ${JSON.stringify(name)} is invalid: must be a file name of printable ASCII`,
    );
  }
  // In Lambda even an invalid configuration must register first, to report itself through init/error.
  if (lambdaSettings(process.env).runtimeApi !== undefined) {
    if (flags['--config'] !== undefined) {
      throw new UsageError('--config is not read inside Lambda; set environment variables on the function');
    }
    return runExtension(process.env, name);
  }
  const config = loadConfig(process.env, await configFile(flags));
  const log = createLogger(config.logLevel, config.logFormat);
  requireToken(config);
  const daemon = await (await loadDaemon()).startDaemon(config, log);
  startCompleted();
  return untilSignal(() => daemon.stop(SIDECAR_GRACE_MS), log);
}

/** Loads the emulator (dist/emulator.cjs beside the bundle): `serve` never parses it. */
const loadEmulator = () => import('../packages/emulator/index.ts');

/**
 * The control token from --control-token, else the environment; undefined lets the emulator make one.
 * Checked here, before the emulator loads (the Lambda layer's stand-in for it has nothing but a refusal).
 */
function controlTokenOption(flags: Flags): { token?: string; source?: string } {
  const flag = flags['--control-token'];
  const env = process.env[CONTROL_TOKEN_ENV];
  const [token, source] =
    flag !== undefined ? [flag, '--control-token'] : env ? [env, CONTROL_TOKEN_ENV] : [undefined, undefined];
  if (token === undefined) return {};
  if (!/^[\x21-\x7e]{16,512}$/.test(token)) {
    // Never echo the value: it is a secret.
    throw new UsageError(
      `${source} is invalid: must be 16 to 512 visible ASCII characters without spaces (got ${token.length} characters)`,
    );
  }
  return { token, source };
}

const UPPER_ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';

/** A key pair shaped like IAM's (AKIA + 16 upper-case letters and digits, a 40-character secret). */
function devCredentials(): { accessKeyId: string; secretAccessKey: string } {
  const c = nodeCrypto();
  const id = [...c.randomBytes(16)].map((b) => UPPER_ALNUM[b % UPPER_ALNUM.length]).join('');
  return { accessKeyId: `AKIA${id}`, secretAccessKey: c.randomBytes(30).toString('base64') };
}

async function emulator(args: string[]): Promise<number> {
  const flags = parseFlags(args, ['--store', '--port', '--control-token']);
  const port = portFlag(flags, '--port') ?? 2774;
  const store = storeFlag(flags);
  const control = controlTokenOption(flags);
  const { startEmulator } = await loadEmulator();
  const emu = await startEmulator({ port, store, controlToken: control.token }).catch((e: unknown) => {
    throw portInUse(e, '--port', port);
  });
  process.stdout.write(
    `pscache emulator listening on ${emu.url} (store: ${store})
Signatures are not checked: any credentials work, for example:
  ${awsExports(emu.url, devCredentials(), emu.region)}
${controlLine(emu.url, emu.controlToken, control.source)}
`,
  );
  const log = createLogger('info', 'text');
  return untilSignal(() => emu.close(), log);
}

/** A value as one shell word: bare when the shell would read it as is, else single-quoted. */
function shellWord(v: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(v) ? v : `'${v.replaceAll("'", "'\\''")}'`;
}

/** The line that points the AWS CLI and SDKs at the emulator, ready to paste into a POSIX shell. */
function awsExports(
  endpoint: string,
  creds: { accessKeyId: string; secretAccessKey: string },
  region: string,
): string {
  const vars = {
    AWS_ENDPOINT_URL: endpoint,
    AWS_ACCESS_KEY_ID: creds.accessKeyId,
    AWS_SECRET_ACCESS_KEY: creds.secretAccessKey,
    AWS_REGION: region,
    // The AWS CLI v1 (botocore) reads only this one.
    AWS_DEFAULT_REGION: region,
  };
  return `export ${Object.entries(vars)
    .map(([k, v]) => `${k}=${shellWord(v)}`)
    .join(' ')}`;
}

function controlLine(url: string, token: string, source: string | undefined): string {
  const shown = source === undefined ? token : `(from ${source})`;
  return `Control API: ${url}/__emulator/ with header X-Emulator-Control-Token: ${shown}`;
}

/** The environment without any AWS_ENDPOINT_URL_<SERVICE> (AWS_ENDPOINT_URL itself is set by the caller). */
function withoutEndpointOverrides(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(env).filter(([k]) => !k.startsWith('AWS_ENDPOINT_URL_')));
}

/** The --config file without credentials_file_path: dev signs with its own credentials. */
function withoutCredentialsFile(file: ConfigFile | undefined): ConfigFile | undefined {
  if (file === undefined || !file.values.has('credentialsFile')) return file;
  const values = new Map(file.values);
  values.delete('credentialsFile');
  return { ...file, values };
}

async function dev(args: string[]): Promise<number> {
  const flags = parseFlags(args, ['--store', '--port', '--emulator-port', '--control-token', '--config']);
  const store = storeFlag(flags);
  const port = portFlag(flags, '--port');
  const emulatorPort = portFlag(flags, '--emulator-port') ?? 0;
  const file = await configFile(flags);
  // Validate the user's configuration first, so a bad value is reported before anything starts. The
  // Region is dev's own (the emulator's), so none is needed here.
  const userConfig = loadConfig({ ...process.env, AWS_REGION: 'us-east-1' }, file);
  const control = controlTokenOption(flags);

  const credentials = devCredentials();
  const { startEmulator, loadStoreFile } = await loadEmulator();
  const emu = await startEmulator({
    port: emulatorPort,
    store,
    credentials: [credentials],
    controlToken: control.token,
  }).catch((e: unknown) => {
    throw portInUse(e, '--emulator-port', emulatorPort || undefined);
  });
  const ownToken = userConfig.tokenSource?.startsWith(SETTINGS.token.env) ? userConfig.token : undefined;
  const token = ownToken || nodeCrypto().randomBytes(24).toString('base64url');
  let config: Config;
  try {
    config = loadConfig(
      {
        // Every AWS_ENDPOINT_URL_* of the user's shell goes (STS's too: AssumeRole for roleArn reads must
        // reach the emulator, signed with dev's own credentials, and nothing else).
        ...withoutEndpointOverrides(process.env),
        // The shell's credentials file would replace dev's own credentials (a file wins over every other
        // source) and send its session token to the emulator: dev signs with its own only.
        PARAMETERS_SECRETS_EXTENSION_CREDENTIALS_FILE: undefined,
        ...(port !== undefined ? { PARAMETERS_SECRETS_EXTENSION_HTTP_PORT: String(port) } : {}),
        PARAMETERS_SECRETS_EXTENSION_TOKEN: token,
        AWS_REGION: emu.region,
        AWS_ACCESS_KEY_ID: credentials.accessKeyId,
        AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey,
        AWS_SESSION_TOKEN: undefined,
        AWS_CONTAINER_CREDENTIALS_FULL_URI: undefined,
        AWS_CONTAINER_CREDENTIALS_RELATIVE_URI: undefined,
        AWS_ENDPOINT_URL: emu.url,
      },
      withoutCredentialsFile(file),
    );
  } catch (e) {
    await emu.close();
    throw e;
  }
  const log = createLogger(config.logLevel, config.logFormat);
  let daemon: Daemon;
  try {
    daemon = await (await loadDaemon()).startDaemon(config, log);
  } catch (e) {
    await emu.close();
    throw portInUse(e, '--port', config.port);
  }
  const names = tryNames(loadStoreFile(store), emu.region);
  process.stdout.write(
    devBanner(config.port, emu.url, store, ownToken ? undefined : token, names, [
      `Point the AWS CLI or an SDK at the emulator (it checks signatures against these credentials):`,
      `  ${awsExports(emu.url, credentials, emu.region)}`,
      `  ${awsTryLine(names)}`,
      controlLine(emu.url, emu.controlToken, control.source),
    ]),
  );
  return untilSignal(async () => {
    await daemon.stop(SIDECAR_GRACE_MS);
    await emu.close();
  }, log);
}

/** Names of the store `dev` serves, for its ready-to-paste lines: entries of the emulator's own Region. */
interface TryNames {
  parameter?: string;
  secureParameter?: string;
  secret?: string;
  /** A secret with an AWSPREVIOUS version. */
  rotated?: string;
}

function tryNames(store: StoreFile, region: string): TryNames {
  const here = (e: { region?: string }) => e.region === undefined || e.region === region;
  const params = (store.parameters ?? []).filter(here);
  const secrets = (store.secrets ?? []).filter(here);
  return {
    parameter: params.find((p) => p.type !== 'SecureString')?.name,
    secureParameter: params.find((p) => p.type === 'SecureString')?.name,
    secret: secrets[0]?.name,
    rotated: secrets.find((x) => x.previous !== undefined)?.name,
  };
}

/** A name as a query value inside single quotes: URL-encoded, and no quote left for the shell. */
const q = (name: string) => encodeURIComponent(name).replace(/'/g, '%27');

function awsTryLine(n: TryNames): string {
  if (n.parameter ?? n.secureParameter) {
    return `aws ssm get-parameter --name ${shellWord((n.parameter ?? n.secureParameter)!)}`;
  }
  if (n.secret) return `aws secretsmanager get-secret-value --secret-id ${shellWord(n.secret)}`;
  return 'aws secretsmanager list-secrets';
}

function devBanner(
  port: number,
  emulatorUrl: string,
  store: string,
  token: string | undefined,
  names: TryNames,
  emulatorLines: string[],
): string {
  const t = token ?? '$PARAMETERS_SECRETS_EXTENSION_TOKEN';
  const base = `http://localhost:${port}`;
  const h = `-H "X-Aws-Parameters-Secrets-Token: ${t}"`;
  const tries = [
    `curl -s ${base}/ping`,
    ...(names.parameter
      ? [`curl -s ${h} '${base}/systemsmanager/parameters/get?name=${q(names.parameter)}'`]
      : []),
    ...(names.secureParameter
      ? [
          `curl -s ${h} '${base}/systemsmanager/parameters/get?name=${q(names.secureParameter)}&withDecryption=true'`,
        ]
      : []),
    ...(names.secret ? [`curl -s ${h} '${base}/secretsmanager/get?secretId=${q(names.secret)}'`] : []),
    ...(names.rotated
      ? [`curl -s ${h} '${base}/secretsmanager/get?secretId=${q(names.rotated)}&versionStage=AWSPREVIOUS'`]
      : []),
    `curl -si ${h} '${base}/secretsmanager/get?secretId=does-not-exist'`,
  ];
  return `
pscache dev: daemon on ${base}, emulator on ${emulatorUrl}
store: ${store}
token: ${token ?? '(from PARAMETERS_SECRETS_EXTENSION_TOKEN)'}

Try:
${tries.map((l) => `  ${l}`).join('\n')}

${emulatorLines.join('\n')}
Press Ctrl+C to stop.
`;
}

/** The client command; its code, exit codes included, lives in src/client/get-command.ts. */
async function get(args: string[]): Promise<number> {
  // Loaded only for this command (dist/get-command.cjs beside the bundle): `serve` never parses it.
  const { runGet } = await import('./client/get-command.ts');
  return runGet(args, process.env, {
    stdout: (d) => process.stdout.write(d),
    stderr: (d) => process.stderr.write(d),
  });
}

/** `pscache token`, in src/token-command.ts; loaded only for this command (dist/token-command.cjs). */
async function token(args: string[]): Promise<number> {
  const { runToken } = await import('./token-command.ts');
  return runToken(args, {
    stdout: (d) => process.stdout.write(d),
    stderr: (d) => process.stderr.write(d),
  });
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(`${USAGE['main']}\n`);
    return command === undefined ? 1 : 0;
  }
  if (command === '--version' || command === '-v') {
    process.stdout.write(`${VERSION}\n`);
    return 0;
  }
  const usage = USAGE[command];
  if (usage === undefined || command === 'main') {
    process.stderr.write(`pscache: unknown command ${JSON.stringify(command)}; run pscache --help\n`);
    return 2;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(`${usage}\n`);
    return 0;
  }
  try {
    if (command === 'serve') return await serve(rest);
    if (command === 'dev') return await dev(rest);
    if (command === 'get') return await get(rest);
    if (command === 'token') return await token(rest);
    return await emulator(rest);
  } catch (e) {
    if (e instanceof ConfigError || e instanceof UsageError) {
      process.stderr.write(`pscache: ${e.message}\n`);
      return 2;
    }
    process.stderr.write(`pscache: ${e instanceof Error ? e.message : String(e)}\n`);
    return 1;
  }
}

/** Runs the CLI with `argv` (without node and the script) and exits with its code. */
export function run(argv: string[]): void {
  main(argv).then(
    // Exit explicitly: the servers are closed by now, and pipes to stdout/stderr are synchronous on Linux.
    (code) => process.exit(code),
    (e) => {
      process.stderr.write(`pscache: ${e instanceof Error ? e.message : String(e)}\n`);
      process.exit(1);
    },
  );
}

/**
 * When a V8 startup snapshot of the bundle is built (bench/snapshot.ts), the bundle is loaded with this
 * hook and runs nothing: the snapshot's builder calls `run` in each process started from it. Anywhere
 * else the bundle is the CLI, and runs at once.
 */
const snapshotHook = (globalThis as Record<symbol, unknown>)[Symbol.for('pscache.snapshot')] as
  | { run?: typeof run }
  | undefined;
if (snapshotHook) snapshotHook.run = run;
else run(process.argv.slice(2));
