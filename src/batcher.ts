// Upstream batching: single-item misses for different names that arrive within a short window share one
// GetParameters (10 names) or BatchGetSecretValue (20 ids) call, and each caller still gets exactly the
// body or error it would have got from its own GetParameter / GetSecretValue.
import type { Upstream } from './aws/index.ts';
import { batchGetSecretValue } from './aws/secretsmanager.ts';
import { getParameters } from './aws/ssm.ts';
import { UpstreamError } from './aws/types.ts';
import type { Service } from './config.ts';
import { type ItemRequest, type Loaded, type Loader, loadedParameter, loadedSecret } from './items.ts';
import type { Logger } from './log.ts';

interface Waiter {
  r: ItemRequest;
  resolve: (l: Loaded) => void;
  reject: (e: unknown) => void;
}

interface Group {
  service: Service;
  withDecryption: boolean;
  waiters: Waiter[];
  timer: NodeJS.Timeout;
  /** When the first waiter arrived: the group never waits longer than MAX_WAIT_WINDOWS windows. */
  openedAt: number;
}

/**
 * The window slides: each arrival gives the group another window to grow (a burst of concurrent misses
 * arrives spread over the time the server takes to read them), but no request waits more than this many
 * windows for its batch.
 */
const MAX_WAIT_WINDOWS = 5;

const LIMIT: Record<Service, number> = { ssm: 10, secretsmanager: 20 };

/** After a batch call fails as a whole (not throttling), single calls are used for this long. */
export const BATCH_BACKOFF_MS = 5 * 60 * 1000;

export class Batcher {
  private readonly open = new Map<string, Group>();
  /** Date.now() until which batching is off, per service (the role may lack the batch permission). */
  private readonly offUntil: Record<Service, number> = { ssm: 0, secretsmanager: 0 };

  constructor(
    private readonly upstream: Upstream,
    private readonly windowMs: number,
    private readonly single: Loader,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  load(r: ItemRequest): Promise<Loaded> {
    if (this.now() < this.offUntil[r.service]) return this.single(r);
    const withDecryption = r.service === 'ssm' && r.withDecryption;
    const groupKey = `${r.service}:${withDecryption}`;
    return new Promise<Loaded>((resolve, reject) => {
      const now = performance.now();
      let g = this.open.get(groupKey);
      if (!g) {
        const group: Group = {
          service: r.service,
          withDecryption,
          waiters: [],
          timer: setTimeout(() => this.flush(groupKey, group), this.windowMs),
          openedAt: now,
        };
        g = group;
        this.open.set(groupKey, g);
      } else if (now + this.windowMs <= g.openedAt + this.windowMs * MAX_WAIT_WINDOWS) {
        const group = g;
        clearTimeout(group.timer);
        group.timer = setTimeout(() => this.flush(groupKey, group), this.windowMs);
      }
      g.waiters.push({ r, resolve, reject });
      if (g.waiters.length >= LIMIT[r.service]) {
        clearTimeout(g.timer);
        this.flush(groupKey, g);
      }
    });
  }

  private flush(groupKey: string, g: Group): void {
    if (this.open.get(groupKey) === g) this.open.delete(groupKey);
    if (g.waiters.length === 1) {
      // Nobody to share with: the single call is the cheaper one (and needs only the single permission).
      const w = g.waiters[0]!;
      this.single(w.r).then(w.resolve, w.reject);
      return;
    }
    const run = g.service === 'ssm' ? this.parameters(g) : this.secrets(g);
    run.catch((e: unknown) => this.wholeBatchFailed(g, e));
  }

  private async parameters(g: Group): Promise<void> {
    const byName = groupBy(g.waiters, (w) => (w.r.service === 'ssm' ? w.r.name : ''));
    const out = await getParameters(this.upstream.ssm, [...byName.keys()], g.withDecryption);
    for (const p of out.Parameters) {
      const ws = byName.get(p.Name);
      if (!ws) continue;
      byName.delete(p.Name);
      const loaded = loadedParameter(p);
      for (const w of ws) w.resolve(loaded);
    }
    const invalid = new Set(out.InvalidParameters);
    for (const [name, ws] of byName) {
      // What GetParameter answers for a name that does not exist.
      if (invalid.has(name))
        for (const w of ws) w.reject(new UpstreamError('ParameterNotFound', '', 'aws', 400));
      else this.fallback(ws);
    }
  }

  private async secrets(g: Group): Promise<void> {
    const byId = groupBy(g.waiters, (w) => (w.r.service === 'secretsmanager' ? w.r.secretId : ''));
    const out = await batchGetSecretValue(this.upstream.secretsmanager, [...byId.keys()]);
    for (const s of out.SecretValues) {
      const loaded = loadedSecret(s);
      for (const id of [s.Name, s.ARN]) {
        const ws = id === undefined ? undefined : byId.get(id);
        if (!ws) continue;
        byId.delete(id!);
        for (const w of ws) w.resolve(loaded);
      }
    }
    for (const e of out.Errors) {
      const ws = e.SecretId === undefined ? undefined : byId.get(e.SecretId);
      if (!ws) continue;
      byId.delete(e.SecretId!);
      const code = e.ErrorCode ?? 'UnknownError';
      for (const w of ws) w.reject(new UpstreamError(code, e.Message ?? code, 'aws', 400));
    }
    // Ids the answer did not mention (a partial ARN, say): ask for them one by one.
    for (const ws of byId.values()) this.fallback(ws);
  }

  private wholeBatchFailed(g: Group, e: unknown): void {
    if (e instanceof UpstreamError && e.kind === 'throttled') {
      // Single calls would be throttled too; everyone gets what they would have got alone.
      for (const w of g.waiters) w.reject(e);
      return;
    }
    this.offUntil[g.service] = this.now() + BATCH_BACKOFF_MS;
    this.log.info('batch call failed; using single calls for a while', {
      service: g.service,
      code: e instanceof UpstreamError ? e.code : 'InternalError',
      minutes: BATCH_BACKOFF_MS / 60000,
    });
    this.fallback(g.waiters);
  }

  private fallback(ws: Waiter[]): void {
    for (const w of ws) this.single(w.r).then(w.resolve, w.reject);
  }
}

function groupBy<T>(items: T[], key: (t: T) => string): Map<string, T[]> {
  const m = new Map<string, T[]>();
  for (const t of items) {
    const k = key(t);
    const list = m.get(k);
    if (list) list.push(t);
    else m.set(k, [t]);
  }
  return m;
}
