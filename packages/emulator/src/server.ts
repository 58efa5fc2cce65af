// The emulator's HTTP server: lifecycle, state and the Emulator methods; requests go to control or dispatch.
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { control, controlTokenProblem, parseContainerCredentials, parseCredentials } from './control.ts';
import type { Core } from './core.ts';
import { dispatch } from './dispatch.ts';
import { FaultTable, RateLimiter } from './faults.ts';
import { sameSecret, send } from './http.ts';
import { DenyList, RoleAccess, stringArray } from './policy.ts';
import { SigV4Verifier } from './sigv4.ts';
import { DEFAULT_ACCOUNT, DEFAULT_REGION, FakeKms, Regions, randomAlnum } from './state.ts';
import { loadStoreFile, validateStore } from './store.ts';
import { StsState } from './sts.ts';
import type {
  CallRecord,
  ContainerCredentialsOptions,
  Emulator,
  EmulatorCredential,
  EmulatorOptions,
  FaultRule,
  RateLimitOptions,
  StoreFile,
  StoreParameter,
  StoreSecret,
} from './types.ts';

const MAX_CALL_LOG = 10_000;

class EmulatorServer implements Core {
  url = '';
  port = 0;
  readonly region: string;
  readonly accountId: string;
  readonly controlToken: string;
  readonly regions: Regions;
  readonly kms = new FakeKms();
  readonly denyList = new DenyList();
  readonly roleAccess = new RoleAccess();
  readonly faults = new FaultTable();
  readonly limiter = new RateLimiter();
  readonly verifier = new SigV4Verifier();
  readonly sts: StsState;
  closed = false;
  readonly clock: () => number;
  private readonly server = createServer({ keepAliveTimeout: 65_000 }, (req, res) => {
    this.handle(req, res).catch((err: unknown) => {
      this.opts.log?.(`emulator: internal error: ${(err as Error)?.message ?? String(err)}`);
      send(res, 500, JSON.stringify({ __type: 'InternalFailure' }), {
        'content-type': 'application/x-amz-json-1.1',
      });
    });
  });
  private readonly sockets = new Set<Socket>();
  private readonly waits = new Set<{ timer: NodeJS.Timeout; resolve: () => void }>();
  private readonly counts = new Map<string, number>();
  private log: CallRecord[] = [];
  private staticCreds: EmulatorCredential[] | undefined;
  private containerMinted: EmulatorCredential[] = [];
  private container: ContainerCredentialsOptions | undefined;

  constructor(
    readonly opts: EmulatorOptions,
    store: StoreFile,
  ) {
    this.clock = opts.clock ?? Date.now;
    this.region = opts.region ?? store.region ?? DEFAULT_REGION;
    this.accountId = opts.accountId ?? store.accountId ?? DEFAULT_ACCOUNT;
    this.controlToken = opts.controlToken ?? randomBytes(24).toString('base64url');
    this.regions = new Regions(this.region, this.accountId);
    this.regions.seed(store, this.clock());
    this.denyList.add(store.deny ?? []);
    this.denyList.addOperations(store.denyOperations ?? []);
    this.sts = new StsState(this.verifier, opts.roleSessionSeconds ?? 3600);
    this.staticCreds = opts.credentials;
    this.container = parseContainerCredentials(opts.containerCredentials);
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

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    if (path === '/__emulator' || path.startsWith('/__emulator/')) return control(this, req, res, path);
    return dispatch(this, req, res, url, path);
  }

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

  count(key: string): void {
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
  }

  record(call: CallRecord): void {
    if (this.log.length >= MAX_CALL_LOG) this.log.shift();
    this.log.push(call);
  }

  calls(): Record<string, number> {
    return Object.fromEntries(this.counts);
  }

  callLog(): CallRecord[] {
    return this.log.map((c) => ({ ...c }));
  }

  resetCalls(): void {
    this.counts.clear();
    this.log = [];
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

  denyRoles(roleArns: string[]): void {
    this.sts.denyRoles(stringArray(roleArns, 'roles'));
  }

  allowRole(roleArn: string, resources: string[] | undefined): void {
    if (typeof roleArn !== 'string' || !roleArn) throw new Error('allowRole needs a role ARN');
    this.roleAccess.set(roleArn, resources === undefined ? undefined : stringArray(resources, 'resources'));
  }

  clearDeny(): void {
    this.denyList.clear();
    this.sts.clearDeny();
    this.roleAccess.clear();
  }

  setCredentials(c: EmulatorCredential[] | undefined): void {
    this.staticCreds = c === undefined ? undefined : parseCredentials(c);
    this.applyCredentials();
  }

  setRateLimit(opts: RateLimitOptions | undefined): void {
    this.limiter.set(opts, this.clock());
  }

  setContainerCredentials(c: ContainerCredentialsOptions | undefined): void {
    this.container = parseContainerCredentials(c);
    if (!this.container) this.containerMinted = [];
    this.applyCredentials();
  }

  seed(store: StoreFile): { parameters: string[]; secrets: string[] } {
    return this.regions.seed(validateStore(store, 'seed'), this.clock());
  }

  putParameter(p: StoreParameter): string {
    return this.seed({ parameters: [p] }).parameters[0]!;
  }

  createSecret(s: StoreSecret): string {
    return this.seed({ secrets: [s] }).secrets[0]!;
  }

  /**
   * Verification is on when credentials were given or container credentials can be minted; minted
   * credentials (container and AssumeRole) are accepted either way.
   */
  private applyCredentials(): void {
    const now = this.clock();
    this.containerMinted = this.containerMinted.filter((c) => (c.expiresAt ?? now) > now - 60_000);
    this.verifier.set(
      [...(this.staticCreds ?? []), ...this.containerMinted, ...this.sts.credentials()],
      this.staticCreds !== undefined || this.container !== undefined,
    );
  }

  /** The container credentials endpoint: every call mints a fresh set that SigV4 then accepts until it expires. */
  mintContainerCredentials(authorization: string | string[] | undefined): [number, unknown] {
    this.count('ContainerCredentials');
    const c = this.container;
    if (!c) return [404, { error: 'container credentials are not configured' }];
    if (!sameSecret(authorization, c.authToken))
      return [401, { error: 'missing or wrong Authorization token' }];
    const expiresAt = this.clock() + c.ttlSeconds * 1000;
    const cred: EmulatorCredential = {
      accessKeyId: `ASIA${randomAlnum(16).toUpperCase()}`,
      secretAccessKey: randomBytes(30).toString('base64'),
      sessionToken: randomBytes(48).toString('base64'),
      expiresAt,
    };
    this.containerMinted.push(cred);
    this.applyCredentials();
    return [
      200,
      {
        AccessKeyId: cred.accessKeyId,
        SecretAccessKey: cred.secretAccessKey,
        Token: cred.sessionToken,
        Expiration: new Date(expiresAt).toISOString(),
      },
    ];
  }

  sleep(ms: number): Promise<void> {
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
  if (opts.controlToken !== undefined) {
    const problem = controlTokenProblem(opts.controlToken);
    if (problem) throw new Error(`emulator controlToken ${problem}`);
  }
  const seconds = opts.roleSessionSeconds;
  if (seconds !== undefined && !(Number.isFinite(seconds) && seconds > 0))
    throw new Error(`emulator roleSessionSeconds must be a number > 0, not ${seconds}`);
  const emulator = new EmulatorServer(opts, store);
  await emulator.listen(port);
  return emulator;
}
