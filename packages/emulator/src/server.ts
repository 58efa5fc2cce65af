// The emulator's HTTP server: AWS JSON 1.1 dispatch, SigV4, faults, denials, counters and control routes.
import { randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { accessDenied, type Handler, type OpContext } from './context.ts';
import { AwsError, Input } from './errors.ts';
import { DenyList, FaultTable, parseFaultRules, RateLimiter } from './policy.ts';
import { SECRETS_OPERATIONS, secretsRequestNames } from './secretsmanager.ts';
import { SigV4Verifier } from './sigv4.ts';
import { SSM_OPERATIONS, ssmRequestNames } from './ssm.ts';
import {
  DEFAULT_ACCOUNT,
  DEFAULT_REGION,
  FakeKms,
  loadStoreFile,
  randomAlnum,
  State,
  validateStore,
} from './store.ts';
import type {
  ContainerCredentialsOptions,
  Emulator,
  EmulatorCredential,
  EmulatorOptions,
  FaultKind,
  FaultRule,
  RateLimitOptions,
  StoreFile,
} from './types.ts';

const AMZ_JSON = 'application/x-amz-json-1.1';
const MAX_BODY = 1024 * 1024;
const HUGE_BYTES = 50 * 1024 * 1024;
const ENDLESS_MAX_MS = 60_000;
const CHUNK = Buffer.alloc(64 * 1024, 'a');

type ServiceName = 'ssm' | 'secretsmanager';

interface ServiceDef {
  service: ServiceName;
  ops: Record<string, Handler>;
  names: (input: Input) => string[];
}

/** X-Amz-Target prefix -> service. */
const SERVICES: Record<string, ServiceDef> = {
  AmazonSSM: { service: 'ssm', ops: SSM_OPERATIONS, names: ssmRequestNames },
  secretsmanager: { service: 'secretsmanager', ops: SECRETS_OPERATIONS, names: secretsRequestNames },
};

type Body = Buffer | 'too-large' | 'aborted';

/** Reads a request body, keeping at most `limit` bytes (the rest is read and dropped). */
function readBody(req: IncomingMessage, limit: number): Promise<Body> {
  return new Promise((resolve) => {
    const declared = Number(req.headers['content-length']);
    let done = false;
    const finish = (b: Body) => {
      if (!done) {
        done = true;
        resolve(b);
      }
    };
    if (declared > limit) finish('too-large');
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      if (done) return;
      size += c.length;
      if (size > limit) {
        chunks.length = 0;
        finish('too-large');
      } else {
        chunks.push(c);
      }
    });
    req.on('end', () => finish(Buffer.concat(chunks, size)));
    req.on('error', () => finish('aborted'));
    req.on('close', () => finish('aborted'));
  });
}

function parseQuery(url: string): Record<string, string | string[]> {
  const q = url.indexOf('?');
  const out: Record<string, string | string[]> = {};
  if (q < 0) return out;
  for (const [k, v] of new URLSearchParams(url.slice(q + 1))) {
    const prev = out[k];
    out[k] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v];
  }
  return out;
}

const alive = (res: ServerResponse) => !res.destroyed && !res.writableEnded;

function send(
  res: ServerResponse,
  status: number,
  body: string | Buffer,
  headers: Record<string, string | number>,
): void {
  if (!alive(res) || res.headersSent) return;
  const data = typeof body === 'string' ? Buffer.from(body) : body;
  res.writeHead(status, { ...headers, 'content-length': data.length });
  res.end(data);
}

function sendAws(res: ServerResponse, status: number, doc: unknown, requestId: string): void {
  send(res, status, JSON.stringify(doc), { 'content-type': AMZ_JSON, 'x-amzn-RequestId': requestId });
}

function sendError(res: ServerResponse, err: AwsError, requestId: string): void {
  sendAws(res, err.status, err.body(), requestId);
}

function sendControl(res: ServerResponse, status: number, doc: unknown): void {
  send(res, status, status === 204 ? '' : JSON.stringify(doc), { 'content-type': 'application/json' });
}

/** Waits for the response to drain, or to close (a client gone away never drains). */
function drained(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}

function readJson(body: Body): { ok: true; value: unknown } | { ok: false; error: string } {
  if (body === 'too-large') return { ok: false, error: `body larger than ${MAX_BODY} bytes` };
  if (body === 'aborted') return { ok: false, error: 'request aborted' };
  try {
    return { ok: true, value: body.length === 0 ? null : JSON.parse(body.toString('utf8')) };
  } catch {
    return { ok: false, error: 'body is not valid JSON' };
  }
}

function stringArray(v: unknown, what: string): string[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string'))
    throw new Error(`${what} must be an array of strings`);
  return v as string[];
}

function parseCredentials(v: unknown): EmulatorCredential[] | undefined {
  if (v === null || v === undefined) return undefined;
  if (!Array.isArray(v)) throw new Error('credentials must be an array (or null to turn verification off)');
  return v.map((c, i) => {
    if (c === null || typeof c !== 'object') throw new Error(`credentials[${i}] must be an object`);
    const o = c as Record<string, unknown>;
    if (typeof o['accessKeyId'] !== 'string' || typeof o['secretAccessKey'] !== 'string') {
      throw new Error(`credentials[${i}] needs string accessKeyId and secretAccessKey`);
    }
    const cred: EmulatorCredential = { accessKeyId: o['accessKeyId'], secretAccessKey: o['secretAccessKey'] };
    if (typeof o['sessionToken'] === 'string') cred.sessionToken = o['sessionToken'];
    if (typeof o['expiresAt'] === 'number') cred.expiresAt = o['expiresAt'];
    return cred;
  });
}

function parseContainerCredentials(v: unknown): ContainerCredentialsOptions | undefined {
  if (v === null || v === undefined) return undefined;
  const o = v as Record<string, unknown>;
  if (typeof o !== 'object' || typeof o['authToken'] !== 'string' || !o['authToken']) {
    throw new Error('container credentials need a non-empty string authToken');
  }
  const ttl = o['ttlSeconds'];
  if (typeof ttl !== 'number' || !(ttl > 0)) throw new Error('container credentials need ttlSeconds > 0');
  return { authToken: o['authToken'], ttlSeconds: ttl };
}

class EmulatorServer implements Emulator {
  url = '';
  port = 0;
  private readonly server = createServer({ keepAliveTimeout: 65_000 }, (req, res) => {
    this.handle(req, res).catch((err: unknown) => {
      this.opts.log?.(`emulator: internal error: ${(err as Error)?.message ?? String(err)}`);
      send(res, 500, JSON.stringify({ __type: 'InternalFailure' }), { 'content-type': AMZ_JSON });
    });
  });
  private readonly sockets = new Set<Socket>();
  private readonly waits = new Set<{ timer: NodeJS.Timeout; resolve: () => void }>();
  private readonly counts = new Map<string, number>();
  private readonly faults = new FaultTable();
  private readonly denyList = new DenyList();
  private readonly limiter = new RateLimiter();
  private readonly verifier: SigV4Verifier;
  private readonly kms = new FakeKms();
  private readonly state: State;
  private staticCreds: EmulatorCredential[] | undefined;
  private minted: EmulatorCredential[] = [];
  private container: ContainerCredentialsOptions | undefined;
  private closed = false;

  constructor(
    private readonly opts: EmulatorOptions,
    store: StoreFile,
  ) {
    const region = opts.region ?? store.region ?? DEFAULT_REGION;
    const accountId = opts.accountId ?? store.accountId ?? DEFAULT_ACCOUNT;
    this.state = new State(region, accountId);
    this.state.seed(store, Date.now());
    this.denyList.add(store.deny ?? []);
    this.denyList.addOperations(store.denyOperations ?? []);
    this.verifier = new SigV4Verifier(region);
    this.staticCreds = opts.credentials;
    this.container = opts.containerCredentials
      ? parseContainerCredentials(opts.containerCredentials)
      : undefined;
    this.applyCredentials();
    this.server.on('connection', (s: Socket) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
      s.on('error', () => {});
    });
    this.server.on('clientError', (_err, socket: Socket) => {
      if (socket.writable)
        socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      else socket.destroy();
    });
  }

  listen(port: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, '127.0.0.1', () => {
        this.server.off('error', reject);
        const addr = this.server.address();
        this.port = typeof addr === 'object' && addr ? addr.port : port;
        this.url = `http://127.0.0.1:${this.port}`;
        resolve();
      });
    });
  }

  // ------------------------------------------------------------------------------------------
  // Controls (the Emulator interface)

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const w of this.waits) {
      clearTimeout(w.timer);
      w.resolve();
    }
    this.waits.clear();
    const done = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeAllConnections();
    for (const s of this.sockets) s.destroy();
    await done;
  }

  dropConnections(): void {
    for (const s of this.sockets) s.destroy();
  }

  calls(): Record<string, number> {
    return Object.fromEntries(this.counts);
  }

  resetCalls(): void {
    this.counts.clear();
  }

  setFaults(f: FaultRule[]): void {
    this.faults.set(f);
  }

  clearFaults(): void {
    this.faults.clear();
  }

  deny(resources: string[]): void {
    this.denyList.add(stringArray(resources, 'resources'));
  }

  denyOperations(ops: string[]): void {
    this.denyList.addOperations(stringArray(ops, 'operations'));
  }

  clearDeny(): void {
    this.denyList.clear();
  }

  setCredentials(c: EmulatorCredential[] | undefined): void {
    this.staticCreds = c === undefined ? undefined : parseCredentials(c);
    this.applyCredentials();
  }

  setRateLimit(opts: RateLimitOptions | undefined): void {
    this.limiter.set(opts, Date.now());
  }

  setContainerCredentials(c: ContainerCredentialsOptions | undefined): void {
    this.container = parseContainerCredentials(c);
    if (!this.container) this.minted = [];
    this.applyCredentials();
  }

  /** Verification is on when credentials were given or container credentials can be minted. */
  private applyCredentials(): void {
    const now = Date.now();
    this.minted = this.minted.filter((c) => (c.expiresAt ?? now) > now - 60_000);
    if (this.staticCreds === undefined && this.container === undefined) this.verifier.set(undefined);
    else this.verifier.set([...(this.staticCreds ?? []), ...this.minted]);
  }

  private count(key: string): void {
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
  }

  private sleep(ms: number): Promise<void> {
    if (ms <= 0) return Promise.resolve();
    return new Promise((resolve) => {
      const w = {
        timer: setTimeout(() => {
          this.waits.delete(w);
          resolve();
        }, ms),
        resolve,
      };
      this.waits.add(w);
    });
  }

  // ------------------------------------------------------------------------------------------
  // Requests

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = performance.now();
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    if (path === '/__emulator' || path.startsWith('/__emulator/')) return this.control(req, res, path);

    const requestId = randomUUID();
    if (req.method !== 'POST') {
      req.resume();
      res.setHeader('allow', 'POST');
      return sendAws(
        res,
        405,
        { __type: 'UnknownOperationException', message: `Method ${req.method} is not allowed; use POST` },
        requestId,
      );
    }
    const body = await readBody(req, MAX_BODY);
    if (body === 'aborted' || this.closed) return;

    const target = String(req.headers['x-amz-target'] ?? '');
    const dot = target.indexOf('.');
    const def =
      dot > 0 && Object.hasOwn(SERVICES, target.slice(0, dot)) ? SERVICES[target.slice(0, dot)] : undefined;
    const op = dot > 0 ? target.slice(dot + 1) : '';
    const handler = def && Object.hasOwn(def.ops, op) ? def.ops[op] : undefined;
    this.count(handler ? op : target || '(no X-Amz-Target)');
    const log = (status: number | string, note = '') =>
      this.opts.log?.(
        `${handler ? op : target || '-'} ${status} ${(performance.now() - started).toFixed(1)}ms${note}`,
      );

    if (body === 'too-large') {
      res.setHeader('connection', 'close');
      log(413);
      return sendError(
        res,
        new AwsError('SerializationException', `Request body exceeds ${MAX_BODY} bytes`, 413),
        requestId,
      );
    }
    if (!def) {
      log(400);
      return sendError(
        res,
        new AwsError(
          'UnknownOperationException',
          target ? `Unknown target: ${target}` : 'Missing X-Amz-Target header',
        ),
        requestId,
      );
    }

    let input: Input | AwsError;
    try {
      input = Input.parse(body);
    } catch (err) {
      input = err as AwsError;
    }

    // Faults come first: they stand for the network and the service front door misbehaving.
    const fault = handler ? this.faults.match(op, input instanceof Input ? def.names(input) : []) : undefined;
    if (fault) {
      await this.sleep(fault.latencyMs);
      if (this.closed || !alive(res)) return;
      if (fault.error) {
        log(fault.error, ' (fault)');
        return this.sendFault(fault.error, def.service, req, res, requestId);
      }
    }

    const now = Date.now();
    if (this.verifier.enabled) {
      const authError = await this.verifier.verify(
        { method: 'POST', path, query: parseQuery(url), headers: req.headers, body },
        def.service,
        now,
      );
      if (authError) {
        log(authError.type);
        return sendError(res, authError, requestId);
      }
    }
    if (!handler) {
      log(400);
      return sendError(
        res,
        new AwsError('UnknownOperationException', `Unknown operation: ${target}`),
        requestId,
      );
    }
    if (!this.limiter.allow(op, now)) {
      log('ThrottlingException', ' (rate limit)');
      return sendError(res, new AwsError('ThrottlingException', 'Rate exceeded'), requestId);
    }
    const ctx: OpContext = { state: this.state, kms: this.kms, deny: this.denyList, now, op };
    if (this.denyList.deniesOperation(op)) {
      log('AccessDeniedException');
      return sendError(
        res,
        accessDenied(ctx, `${def.service}:${op}`, undefined, def.service === 'ssm' ? 'message' : 'Message'),
        requestId,
      );
    }
    if (input instanceof AwsError) {
      log(input.type);
      return sendError(res, input, requestId);
    }
    let out: unknown;
    try {
      out = handler(input, ctx);
    } catch (err) {
      if (err instanceof AwsError) {
        log(err.type);
        return sendError(res, err, requestId);
      }
      this.opts.log?.(`emulator: ${op} failed: ${(err as Error)?.stack ?? String(err)}`);
      return sendError(
        res,
        def.service === 'ssm'
          ? new AwsError('InternalServerError', undefined, 500)
          : new AwsError('InternalServiceError', 'An error occurred on the server side.', 500, 'Message'),
        requestId,
      );
    }
    log(200);
    sendAws(res, 200, out, requestId);
  }

  private async sendFault(
    kind: FaultKind,
    service: ServiceName,
    req: IncomingMessage,
    res: ServerResponse,
    requestId: string,
  ): Promise<void> {
    const headers = { 'content-type': AMZ_JSON, 'x-amzn-RequestId': requestId };
    switch (kind) {
      case 'throttle':
        return sendError(res, new AwsError('ThrottlingException', 'Rate exceeded'), requestId);
      case '500':
        return sendError(
          res,
          service === 'ssm'
            ? new AwsError('InternalServerError', undefined, 500)
            : new AwsError('InternalServiceError', 'An error occurred on the server side.', 500, 'Message'),
          requestId,
        );
      case '503':
        return sendError(res, new AwsError('ServiceUnavailable', 'Service Unavailable', 503), requestId);
      case 'reset':
        req.socket.destroy();
        return;
      case 'reset-mid-body': {
        const full = Buffer.from(
          JSON.stringify(
            service === 'ssm'
              ? { Parameter: { Name: '/fault', Type: 'String', Value: 'x'.repeat(512), Version: 1 } }
              : { ARN: 'fault', Name: 'fault', SecretString: 'x'.repeat(512), VersionStages: ['AWSCURRENT'] },
          ),
        );
        res.writeHead(200, { ...headers, 'content-length': full.length });
        res.write(full.subarray(0, full.length >> 1), () => req.socket.destroy());
        return;
      }
      case 'malformed':
        return send(res, 200, service === 'ssm' ? '{"Parameter":' : '{"ARN":', headers);
      case 'hang':
        // Never answer; close() or the client's timeout ends it.
        return;
      case 'wrong-content-type':
        return send(res, 200, '<html><body>Service unavailable</body></html>', {
          'content-type': 'text/html',
        });
      case 'huge': {
        const head =
          service === 'ssm'
            ? '{"Parameter":{"Name":"/huge","Type":"String","Value":"'
            : '{"Name":"huge","SecretString":"';
        const tail = service === 'ssm' ? '","Version":1}}' : '","VersionStages":["AWSCURRENT"]}';
        const size = HUGE_BYTES - head.length - tail.length;
        res.writeHead(200, { ...headers, 'content-length': HUGE_BYTES });
        res.write(head);
        await this.stream(res, size);
        if (alive(res)) res.end(tail);
        return;
      }
      case 'endless': {
        res.writeHead(200, headers);
        res.write(service === 'ssm' ? '{"Parameter":{"Value":"' : '{"SecretString":"');
        await this.stream(res, undefined);
        if (alive(res)) res.end();
        return;
      }
    }
  }

  /** Writes `bytes` filler bytes (or, when undefined, until the client leaves or 60 s pass), honouring backpressure. */
  private async stream(res: ServerResponse, bytes: number | undefined): Promise<void> {
    const deadline = Date.now() + ENDLESS_MAX_MS;
    let left = bytes ?? Number.POSITIVE_INFINITY;
    while (left > 0 && alive(res) && !this.closed) {
      if (bytes === undefined && Date.now() > deadline) return;
      const n = Math.min(CHUNK.length, left);
      left -= n;
      if (!res.write(n === CHUNK.length ? CHUNK : CHUNK.subarray(0, n))) await drained(res);
    }
  }

  // ------------------------------------------------------------------------------------------
  // Control routes (plain JSON, no SigV4; the server only listens on loopback)

  private async control(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    const route = path.replace(/\/+$/, '');
    const method = req.method ?? 'GET';
    const routes: Record<string, string[]> = {
      '/__emulator/health': ['GET'],
      '/__emulator/calls': ['GET'],
      '/__emulator/calls/reset': ['POST'],
      '/__emulator/faults': ['PUT', 'DELETE'],
      '/__emulator/deny': ['PUT', 'DELETE'],
      '/__emulator/credentials': ['PUT'],
      '/__emulator/ratelimit': ['PUT', 'DELETE'],
      '/__emulator/container-credentials': ['GET', 'PUT'],
    };
    const allowed = routes[route];
    const body = await readBody(req, MAX_BODY);
    if (body === 'aborted') return;
    if (!allowed) return sendControl(res, 404, { error: `no such route: ${path}` });
    if (!allowed.includes(method)) {
      res.setHeader('allow', allowed.join(', '));
      return sendControl(res, 405, {
        error: `${method} not allowed on ${route}; use ${allowed.join(' or ')}`,
      });
    }
    const json = method === 'PUT' ? readJson(body) : { ok: true as const, value: null };
    if (!json.ok) return sendControl(res, 400, { error: json.error });
    const value = json.value;
    try {
      switch (`${method} ${route}`) {
        case 'GET /__emulator/health':
          return sendControl(res, 200, {
            status: 'ok',
            region: this.state.region,
            accountId: this.state.accountId,
          });
        case 'GET /__emulator/calls':
          return sendControl(res, 200, this.calls());
        case 'POST /__emulator/calls/reset':
          this.resetCalls();
          return sendControl(res, 204, null);
        case 'PUT /__emulator/faults':
          this.faults.set(parseFaultRules(value));
          return sendControl(res, 204, null);
        case 'DELETE /__emulator/faults':
          this.clearFaults();
          return sendControl(res, 204, null);
        case 'PUT /__emulator/deny': {
          const o = (value ?? {}) as Record<string, unknown>;
          if (typeof o !== 'object' || Array.isArray(o))
            throw new Error('deny takes {"resources":[...],"operations":[...]}');
          const resources = stringArray(o['resources'], 'resources');
          const operations = stringArray(o['operations'], 'operations');
          // PUT replaces both lists.
          this.denyList.clear();
          this.denyList.add(resources);
          this.denyList.addOperations(operations);
          return sendControl(res, 204, null);
        }
        case 'DELETE /__emulator/deny':
          this.clearDeny();
          return sendControl(res, 204, null);
        case 'PUT /__emulator/credentials':
          this.setCredentials(parseCredentials(value));
          return sendControl(res, 204, null);
        case 'PUT /__emulator/ratelimit':
          if (value !== null && (typeof value !== 'object' || Array.isArray(value))) {
            throw new Error('ratelimit takes {"ssmTps":N,"secretsTps":N} or null');
          }
          this.setRateLimit((value ?? undefined) as RateLimitOptions | undefined);
          return sendControl(res, 204, null);
        case 'DELETE /__emulator/ratelimit':
          this.setRateLimit(undefined);
          return sendControl(res, 204, null);
        case 'PUT /__emulator/container-credentials':
          this.setContainerCredentials(parseContainerCredentials(value));
          return sendControl(res, 204, null);
        case 'GET /__emulator/container-credentials':
          return this.mintContainerCredentials(req, res);
      }
    } catch (err) {
      return sendControl(res, 400, { error: (err as Error).message });
    }
    return sendControl(res, 404, { error: `no such route: ${path}` });
  }

  /** The container credentials endpoint: every call mints a fresh set that SigV4 then accepts until it expires. */
  private mintContainerCredentials(req: IncomingMessage, res: ServerResponse): void {
    this.count('ContainerCredentials');
    const c = this.container;
    if (!c) {
      sendControl(res, 404, { error: 'container credentials are not configured' });
      return;
    }
    const given = Buffer.from(String(req.headers['authorization'] ?? ''));
    const want = Buffer.from(c.authToken);
    if (given.length !== want.length || !timingSafeEqual(given, want)) {
      sendControl(res, 401, { error: 'missing or wrong Authorization token' });
      return;
    }
    const expiresAt = Date.now() + c.ttlSeconds * 1000;
    const cred: EmulatorCredential = {
      accessKeyId: `ASIA${randomAlnum(16).toUpperCase()}`,
      secretAccessKey: randomBytes(30).toString('base64'),
      sessionToken: randomBytes(48).toString('base64'),
      expiresAt,
    };
    this.minted.push(cred);
    this.applyCredentials();
    sendControl(res, 200, {
      AccessKeyId: cred.accessKeyId,
      SecretAccessKey: cred.secretAccessKey,
      Token: cred.sessionToken,
      Expiration: new Date(expiresAt).toISOString(),
    });
  }
}

/** Starts an emulator on 127.0.0.1; resolves once it is listening. */
export async function startEmulator(opts: EmulatorOptions = {}): Promise<Emulator> {
  const store =
    typeof opts.store === 'string'
      ? loadStoreFile(opts.store)
      : opts.store
        ? validateStore(opts.store, 'store option')
        : {};
  const port = opts.port ?? 0;
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new Error(`emulator port must be 0-65535, not ${port}`);
  const emulator = new EmulatorServer(opts, store);
  await emulator.listen(port);
  return emulator;
}
