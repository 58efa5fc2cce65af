// A local stand-in for the Lambda Runtime API's extension endpoints (register, event/next, init/error,
// exit/error), which unpacks a layer zip and runs extensions/<name> from it the way Lambda does.
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { cpSync, existsSync, linkSync, renameSync, rmSync, statSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { dirname, join } from 'node:path';
import { assertNothingSensitive } from './daemon.ts';
import { extractZip } from './lambda-zip.ts';
import { tempDir } from './temp.ts';

/** A scripted answer: an HTTP status and body, or bytes that are not HTTP at all. */
export type Scripted = { status: number; body?: string; headers?: Record<string, string> } | { raw: string };

export interface Call {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
  /** performance.now() when the request arrived. */
  at: number;
}

/** The variables Lambda gives external extensions (REFERENCE.md 8.4), for a function in us-east-1. */
export function lambdaEnvironment(runtimeApi: string, functionEnv: Record<string, string>) {
  // Lambda's PATH for extensions; the directory of the node running the tests is appended, standing for
  // the Node.js runtimes' /var/lang/bin, so that the Node.js layer finds a node wherever it is installed.
  const path = '/usr/local/bin:/usr/bin/:/bin:/opt/bin';
  const nodeDir = dirname(process.execPath);
  const env: Record<string, string> = {
    PATH: path.split(':').includes(nodeDir) ? path : `${path}:${nodeDir}`,
    LANG: 'en_US.UTF-8',
    TZ: ':UTC',
    LD_LIBRARY_PATH: '/lib64:/usr/lib64:/opt/lib',
    AWS_LAMBDA_RUNTIME_API: runtimeApi,
    AWS_REGION: 'us-east-1',
    AWS_DEFAULT_REGION: 'us-east-1',
    AWS_LAMBDA_FUNCTION_NAME: 'pscache-test',
    AWS_LAMBDA_FUNCTION_MEMORY_SIZE: '512',
    AWS_LAMBDA_FUNCTION_VERSION: '$LATEST',
    AWS_LAMBDA_INITIALIZATION_TYPE: 'on-demand',
    ...functionEnv,
  };
  // Extensions do not see these, even though the runtime does.
  for (const hidden of [
    'AWS_EXECUTION_ENV',
    'AWS_LAMBDA_LOG_GROUP_NAME',
    'AWS_LAMBDA_LOG_STREAM_NAME',
    'LAMBDA_RUNTIME_DIR',
    'LAMBDA_TASK_ROOT',
    '_HANDLER',
  ]) {
    delete env[hidden];
  }
  for (const k of Object.keys(env))
    if (k.startsWith('AWS_XRAY_') || k.startsWith('_AWS_XRAY_')) delete env[k];
  return env;
}

export interface Extension {
  readonly child: ChildProcess;
  /** The directory the layer was unpacked into (stands for /opt). */
  readonly dir: string;
  /** performance.now() just before the launcher was executed. */
  readonly startedAt: number;
  output(): string;
  /** Resolves once it has exited and its output is read, with performance.now() of the exit. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>;
  /** Kills it if still running, removes the unpacked layer, asserts nothing sensitive was printed. */
  dispose(): Promise<{ code: number | null; signal: NodeJS.Signals | null; output: string }>;
}

export interface LaunchOptions {
  /** The function's own environment variables (and any Lambda variable to override). */
  env: Record<string, string>;
  /** The launcher's file name under extensions/ (renamed after unpacking); default as in the zip. */
  name?: string;
}

const EXTENSION_NAME = 'pscache';

export class LambdaSim {
  readonly registers: Call[] = [];
  readonly nexts: Call[] = [];
  readonly initErrors: Call[] = [];
  readonly exitErrors: Call[] = [];
  readonly extensionId = randomUUID();
  /** Runs when a register call arrives, before it is answered (to look at the extension meanwhile). */
  onRegister: (() => Promise<void>) | undefined;
  /** Answers for the next register / event/next calls, in order, before the normal behaviour. */
  readonly script: { register: Scripted[]; next: Scripted[] } = { register: [], next: [] };
  private readonly server = createServer((req, res) => this.handle(req, res));
  private readonly sockets = new Set<Socket>();
  private waiting: ServerResponse | undefined;
  private readonly queue: { event: Record<string, unknown>; sent: (at: number) => void }[] = [];
  private readonly watchers = new Set<() => void>();
  address = '';

  async start(): Promise<this> {
    this.server.on('connection', (s: Socket) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    const a = this.server.address();
    this.address = `127.0.0.1:${typeof a === 'object' && a ? a.port : 0}`;
    return this;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** Queues an INVOKE; resolves with performance.now() when it was written to a waiting event/next. */
  invoke(requestId = randomUUID()): Promise<number> {
    return this.deliver({
      eventType: 'INVOKE',
      deadlineMs: Date.now() + 30_000,
      requestId,
      invokedFunctionArn: 'arn:aws:lambda:us-east-1:123456789012:function:pscache-test',
      tracing: {
        type: 'X-Amzn-Trace-Id',
        value: 'Root=1-5f35ae12-0c0fec141ab77a00bc047aa2;Parent=2be948a625588e32;Sampled=1',
      },
    });
  }

  /** Queues a SHUTDOWN; resolves with performance.now() when it was written. */
  shutdown(reason = 'SPINDOWN', budgetMs = 2000): Promise<number> {
    return this.deliver({ eventType: 'SHUTDOWN', shutdownReason: reason, deadlineMs: Date.now() + budgetMs });
  }

  /** Resolves once `check()` holds, re-checked on every call the sim receives. */
  until(check: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
    if (check()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const watcher = () => {
        if (!check()) return;
        this.watchers.delete(watcher);
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        this.watchers.delete(watcher);
        reject(new Error(`timed out waiting for ${what}`));
      }, timeoutMs);
      this.watchers.add(watcher);
    });
  }

  /** Resolves when the extension has called event/next `n` times in all. */
  nextCalls(n: number): Promise<void> {
    return this.until(() => this.nexts.length >= n, `event/next call #${n}`);
  }

  /**
   * Unpacks `zip` into a fresh directory (with a space in its path) and runs extensions/<name> from it
   * with the environment Lambda gives extensions. Given a directory (from unpackLayer), runs from that
   * and leaves it in place.
   */
  launch(zipOrDir: string, opts: LaunchOptions): Extension {
    const owned = zipOrDir.endsWith('.zip');
    const dir = owned ? unpackLayer(zipOrDir) : zipOrDir;
    const name = opts.name ?? EXTENSION_NAME;
    if (name !== EXTENSION_NAME)
      renameSync(join(dir, 'extensions', EXTENSION_NAME), join(dir, 'extensions', name));
    const startedAt = performance.now();
    const child = spawn(join(dir, 'extensions', name), [], {
      cwd: dir,
      env: lambdaEnvironment(this.address, opts.env),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.stderr!.on('data', (d: Buffer) => {
      out += d.toString();
    });
    // `at` is the exit itself; the promise waits for 'close' too, so that all output has been read.
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>(
      (resolve) => {
        let at = 0;
        child.once('exit', () => {
          at = performance.now();
        });
        child.once('close', (code, signal) => resolve({ code, signal, at: at || performance.now() }));
      },
    );
    let done = false;
    void exited.then(() => {
      done = true;
    });
    return {
      child,
      dir,
      startedAt,
      output: () => out,
      exited,
      async dispose() {
        if (!done) child.kill('SIGKILL');
        const r = await exited;
        if (owned) rmSync(dir, { recursive: true, force: true });
        assertNothingSensitive(out);
        return { code: r.code, signal: r.signal, output: out };
      },
    };
  }

  private deliver(event: Record<string, unknown>): Promise<number> {
    return new Promise((sent) => {
      this.queue.push({ event, sent });
      this.flush();
    });
  }

  private flush(): void {
    const res = this.waiting;
    const item = this.queue[0];
    if (!res || !item) return;
    this.waiting = undefined;
    this.queue.shift();
    const body = JSON.stringify(item.event);
    res.writeHead(200, {
      'Content-Type': 'application/json',
      'Lambda-Extension-Event-Identifier': randomUUID(),
      'Content-Length': Buffer.byteLength(body),
    });
    res.end(body, () => item.sent(performance.now()));
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const at = performance.now();
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const call: Call = {
        method: req.method ?? '',
        path: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
        at,
      };
      this.route(call, req, res);
      for (const w of [...this.watchers]) w();
    });
  }

  private answerRegister(req: IncomingMessage, res: ServerResponse): void {
    const scripted = this.script.register.shift();
    if (scripted) {
      answer(req, res, scripted);
      return;
    }
    res.writeHead(200, {
      'Content-Type': 'application/json',
      'Lambda-Extension-Identifier': this.extensionId,
    });
    res.end(
      JSON.stringify({ functionName: 'pscache-test', functionVersion: '$LATEST', handler: 'index.handler' }),
    );
  }

  private route(call: Call, req: IncomingMessage, res: ServerResponse): void {
    const base = '/2020-01-01/extension';
    const known = call.headers['lambda-extension-identifier'] === this.extensionId;
    const forbidden = () =>
      json(res, 403, { errorMessage: 'Unknown extension identifier', errorType: 'Extension.Forbidden' });
    if (call.method === 'POST' && call.path === `${base}/register`) {
      this.registers.push(call);
      const hook = this.onRegister;
      this.onRegister = undefined;
      if (hook) void hook().finally(() => this.answerRegister(req, res));
      else this.answerRegister(req, res);
      return;
    }
    if (call.method === 'GET' && call.path === `${base}/event/next`) {
      this.nexts.push(call);
      const scripted = this.script.next.shift();
      if (scripted) {
        answer(req, res, scripted);
        return;
      }
      if (!known) {
        forbidden();
        return;
      }
      // Long poll: held until an event is queued.
      this.waiting = res;
      res.on('close', () => {
        if (this.waiting === res) this.waiting = undefined;
      });
      this.flush();
      return;
    }
    if (
      call.method === 'POST' &&
      (call.path === `${base}/init/error` || call.path === `${base}/exit/error`)
    ) {
      (call.path.endsWith('/init/error') ? this.initErrors : this.exitErrors).push(call);
      if (known) json(res, 202, { status: 'OK' });
      else forbidden();
      return;
    }
    json(res, 404, { errorMessage: `no route ${call.method} ${call.path}`, errorType: 'NotFound' });
  }
}

function json(res: ServerResponse, status: number, doc: unknown): void {
  const body = JSON.stringify(doc);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

function answer(req: IncomingMessage, res: ServerResponse, s: Scripted): void {
  if ('raw' in s) {
    req.socket.end(s.raw);
    return;
  }
  res.writeHead(s.status, { 'Content-Type': 'application/json', ...s.headers });
  res.end(s.body ?? '');
}

/** Unzips a layer into a fresh directory (with a space in its path), as Lambda does into /opt. */
export function extractLayer(zip: string): string {
  const dir = tempDir('lambda layer');
  extractZip(zip, dir);
  return dir;
}

/** One unzipped copy of each layer per process, by file, size and mtime (the zips are rebuilt in place). */
const unzipped = new Map<string, string>();

/**
 * A fresh directory holding the layer exactly as unzip unpacks it (with a space in its path): unzipped once
 * per process, then copied, modes included, with the ~120 MB node binary hard-linked (tests replace it,
 * never write into it). Unzipping the standalone layers takes about a second each time.
 */
export function unpackLayer(zip: string): string {
  const st = statSync(zip);
  const key = `${zip}:${st.size}:${st.mtimeMs}`;
  let template = unzipped.get(key);
  if (template === undefined) {
    template = extractLayer(zip);
    unzipped.set(key, template);
  }
  const dir = tempDir('lambda layer');
  cpSync(template, dir, {
    recursive: true,
    filter: (src) => src !== join(template, 'pscache', 'node'),
  });
  if (existsSync(join(template, 'pscache', 'node'))) {
    linkSync(join(template, 'pscache', 'node'), join(dir, 'pscache', 'node'));
  }
  return dir;
}

export async function startSim(): Promise<LambdaSim> {
  return new LambdaSim().start();
}
