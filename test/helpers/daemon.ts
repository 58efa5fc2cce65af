// Runs the real bundled daemon (dist/pscache.cjs) as a child process and talks to it over loopback HTTP.
// On stop, every line it printed is checked for the token and the known secret values.
import { type ChildProcess, spawn } from 'node:child_process';
import { createSocket, type Socket as DgramSocket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { type Agent, request } from 'node:http';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const BUNDLE = `${ROOT}dist/pscache.cjs`;

export const TEST_TOKEN = 'test-token-7f3a9c1e-never-logged';
export const TEST_CREDENTIALS = {
  accessKeyId: 'AKIAPSCACHETEST00001',
  secretAccessKey: 'pscache/test/secret/access/key/never-logged',
};

/** Strings that must never appear in any output: the token, credentials and secret values used in tests. */
export const SENSITIVE = new Set<string>([TEST_TOKEN, TEST_CREDENTIALS.secretAccessKey]);

/**
 * Where freePort() looks: below the kernel's ephemeral range (32768-60999 by default), where listen(0)
 * and every outgoing connection of every process take their ports, so a connection made between our
 * check and the daemon's bind cannot take the port. Not below 10000, where services of the machine live.
 */
const PORT_RANGE = ((): { from: number; to: number } => {
  let ephemeralLow = 32768;
  try {
    ephemeralLow = Number(
      readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0],
    );
  } catch {
    // not Linux: the IANA ephemeral range starts at 49152; 32768 is below both
  }
  if (!Number.isInteger(ephemeralLow) || ephemeralLow < 12_000) ephemeralLow = 49152;
  return { from: 10_000, to: Math.min(ephemeralLow, 49152) - 1 };
})();

/**
 * The ports this process has handed out, each with a UDP socket bound to it until the process ends: a
 * lock. Test files run side by side; without it one file could be handed the port another had just found
 * and freed, before that file's daemon bound it (CI saw `port … is already in use` once in ~50 runs), or
 * a port a test relies on nobody listening at. A UDP bind conflicts with no TCP listener, so the lock never
 * stands in the daemon's way; another file's freePort() cannot bind it and picks another port.
 */
const held = new Map<number, DgramSocket>();

function lockPort(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createSocket('udp4');
    s.once('error', () => {
      s.close();
      resolve(false);
    });
    s.bind({ port, address: '127.0.0.1', exclusive: true }, () => {
      s.unref();
      held.set(port, s);
      resolve(true);
    });
  });
}

function bindable(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', (e: NodeJS.ErrnoException) =>
      resolve(e.code === 'EADDRNOTAVAIL' || e.code === 'EAFNOSUPPORT'),
    );
    s.listen({ port, host, exclusive: true }, () => s.close(() => resolve(true)));
  });
}

/**
 * A port free a moment ago on 127.0.0.1 and ::1 (the daemon binds both, and refuses port 0 by design),
 * which no other test process holding the lock above will be handed, and which this process never
 * handed out before.
 */
export async function freePort(): Promise<number> {
  for (let tries = 0; tries < 1000; tries++) {
    const port = PORT_RANGE.from + Math.floor(Math.random() * (PORT_RANGE.to - PORT_RANGE.from + 1));
    if (held.has(port) || !(await lockPort(port))) continue;
    if ((await bindable(port, '127.0.0.1')) && (await bindable(port, '::1'))) return port;
  }
  throw new Error('no free port found in 1000 tries');
}

export interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

export interface RequestOptions {
  token?: string | null;
  headers?: Record<string, string>;
  method?: string;
  host?: string;
  timeoutMs?: number;
  /** A keep-alive agent; by default every request opens its own connection. */
  agent?: Agent;
}

/** One HTTP request on a fresh connection; `token: null` sends none, undefined sends the test token. */
export function httpGet(port: number, path: string, opts: RequestOptions = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { ...opts.headers };
    if (opts.token !== null) headers['X-Aws-Parameters-Secrets-Token'] = opts.token ?? TEST_TOKEN;
    if (opts.host !== undefined) headers['Host'] = opts.host;
    const req = request(
      { host: '127.0.0.1', port, path, method: opts.method ?? 'GET', headers, agent: opts.agent ?? false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString(),
          }),
        );
        res.on('error', reject);
      },
    );
    req.setTimeout(opts.timeoutMs ?? 15000, () => req.destroy(new Error(`request to ${path} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

export interface RunningProcess {
  readonly port: number;
  readonly child: ChildProcess;
  /** Everything printed so far on stdout and stderr. */
  output(): string;
  get(path: string, opts?: RequestOptions): Promise<Reply>;
  /** Sends a signal and waits for exit; asserts nothing sensitive was printed. */
  stop(
    signal?: NodeJS.Signals,
  ): Promise<{ code: number | null; signal: NodeJS.Signals | null; output: string }>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Environment for a daemon pointed at an emulator, with the test token and credentials. */
export function daemonEnv(emulatorUrl: string, port: number, extra: Record<string, string> = {}) {
  return {
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: TEST_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: TEST_CREDENTIALS.secretAccessKey,
    AWS_ENDPOINT_URL: emulatorUrl,
    PARAMETERS_SECRETS_EXTENSION_TOKEN: TEST_TOKEN,
    PARAMETERS_SECRETS_EXTENSION_HTTP_PORT: String(port),
    ...extra,
  };
}

export function assertNothingSensitive(output: string): void {
  for (const s of SENSITIVE) {
    if (s.length >= 6 && output.includes(s)) {
      throw new Error('a secret value or the token appeared in the process output');
    }
  }
}

/**
 * Spawns `pscache <args>` (dist/pscache.cjs, or `opts.script`, run by this node or `opts.node`) with
 * exactly `env` (plus PATH), waits until /ping answers 200 (or until it exits, which rejects with its output).
 */
export async function spawnPscache(
  args: string[],
  env: Record<string, string>,
  opts: { port?: number; waitForPing?: boolean; script?: string; node?: string } = {},
): Promise<RunningProcess> {
  const port = opts.port ?? Number(env['PARAMETERS_SECRETS_EXTENSION_HTTP_PORT'] ?? 2773);
  const child = spawn(opts.node ?? process.execPath, [opts.script ?? BUNDLE, ...args], {
    env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
  });
  child.stderr!.on('data', (d: Buffer) => {
    out += d.toString();
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  let done = false;
  void exited.then(() => {
    done = true;
  });
  const proc: RunningProcess = {
    port,
    child,
    output: () => out,
    get: (path, o) => httpGet(port, path, o),
    exited,
    async stop(signal = 'SIGTERM') {
      if (!done) child.kill(signal);
      const killer = setTimeout(() => child.kill('SIGKILL'), 10000);
      const r = await exited;
      clearTimeout(killer);
      // Let the pipes drain.
      await new Promise((res) => setImmediate(res));
      assertNothingSensitive(out);
      return { ...r, output: out };
    },
  };
  if (opts.waitForPing === false) return proc;
  const deadline = Date.now() + 15000;
  while (Date.now() < deadline) {
    if (done) {
      const r = await exited;
      throw new Error(`pscache exited early (code ${r.code}):\n${out}`);
    }
    try {
      const r = await httpGet(port, '/ping', { token: null, timeoutMs: 1000 });
      if (r.status === 200) return proc;
    } catch {
      // not listening yet
    }
    await new Promise((res) => setTimeout(res, 20));
  }
  child.kill('SIGKILL');
  throw new Error(`pscache did not answer /ping within 15 s:\n${out}`);
}

export interface Completed {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs a command to completion whatever its exit code, with exactly `env` (plus PATH unless given), as
 * another user when `uid`/`gid` are given (root only); rejects if it outlives `timeoutMs` or prints the token or a registered secret value.
 */
export function runCommand(
  cmd: string,
  args: string[],
  env: Record<string, string>,
  opts: { cwd?: string; timeoutMs?: number; uid?: number; gid?: number } = {},
): Promise<Completed> {
  const { timeoutMs = 10000, cwd = ROOT, uid, gid } = opts;
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', ...env },
      cwd,
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(uid !== undefined ? { uid } : {}),
      ...(gid !== undefined ? { gid } : {}),
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${cmd} ${args.join(' ')} did not exit within ${timeoutMs} ms:\n${stdout}${stderr}`));
    }, timeoutMs);
    // 'close', not 'exit': only then has everything the child printed been read.
    child.once('close', (code) => {
      clearTimeout(timer);
      try {
        assertNothingSensitive(stdout + stderr);
      } catch (e) {
        reject(e);
        return;
      }
      resolve({ code, stdout, stderr });
    });
  });
}

/** Runs the bundled pscache to completion (for commands that should fail fast). */
export const runPscache = (args: string[], env: Record<string, string>, timeoutMs = 10000) =>
  runCommand(process.execPath, [BUNDLE, ...args], env, { timeoutMs });

/**
 * The daemons one test file starts: each `serve` on a free port against the emulator, all stopped (and
 * their output scanned) by stopAll() in the file's `after`.
 */
export class Daemons {
  private readonly running = new Set<RunningProcess>();

  constructor(private readonly emulatorUrl: () => string) {}

  /** `pscache serve` (or `args`) with the test environment plus `extra`, or exactly `env` plus a port. */
  async start(
    extra: Record<string, string> = {},
    opts: { args?: string[]; env?: Record<string, string> } = {},
  ): Promise<RunningProcess> {
    // freePort() frees the port it found before the daemon binds it: its lock keeps test files and
    // outgoing connections off it, but a process outside the suite may still bind it in between. The
    // daemon then exits saying so; that is no failure of the daemon under test, so it is started again
    // on another port (at most three times).
    for (let attempt = 1; ; attempt++) {
      const port = await freePort();
      const env = opts.env
        ? { ...opts.env, PARAMETERS_SECRETS_EXTENSION_HTTP_PORT: String(port), ...extra }
        : daemonEnv(this.emulatorUrl(), port, extra);
      try {
        return this.track(await spawnPscache(opts.args ?? ['serve'], env, { port }));
      } catch (e) {
        const taken = new RegExp(`port ${port} on \\S+ is already in use`).test(String(e));
        if (!taken || attempt === 3) throw e;
      }
    }
  }

  /** Adopts a process started some other way, so stopAll() stops it too. */
  track(d: RunningProcess): RunningProcess {
    this.running.add(d);
    return d;
  }

  stop(d: RunningProcess, signal?: NodeJS.Signals) {
    this.running.delete(d);
    return d.stop(signal);
  }

  async stopAll(): Promise<void> {
    for (const d of this.running) await d.stop();
    this.running.clear();
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Waits until `check()` holds (re-checked every few milliseconds): for something that will happen, at a
 * moment the test cannot know. Rejects after `timeoutMs`, a bound for a hang, never a deadline a slow
 * machine could miss.
 */
export async function until(
  check: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 15_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

/**
 * Waits until the process has printed something matching `re`, and returns everything printed: what a test
 * waits for instead of sleeping and hoping the daemon got there. Rejects, with the output, if the process
 * exits first or nothing matches within `timeoutMs`.
 */
export async function printed(p: RunningProcess, re: RegExp, timeoutMs = 15_000): Promise<string> {
  let exited = false;
  void p.exited.then(() => {
    exited = true;
  });
  const deadline = Date.now() + timeoutMs;
  while (!re.test(p.output())) {
    if (exited || Date.now() > deadline) {
      throw new Error(`never printed ${re}${exited ? ' (it exited)' : ''}:\n${p.output()}`);
    }
    await sleep(10);
  }
  return p.output();
}
const q = encodeURIComponent;
/** The official single-item routes, with the name URL-encoded and `extra` appended as is. */
export const param = (name: string, extra = '') => `/systemsmanager/parameters/get?name=${q(name)}${extra}`;
export const secret = (id: string, extra = '') => `/secretsmanager/get?secretId=${q(id)}${extra}`;
