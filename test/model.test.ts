// Model-based test of the cache core: fast-check draws random sequences of reads (plain, refreshNow, ttl,
// batch, path), upstream changes (new values, deletion, denial), answers released in any order (values,
// NotFound/AccessDenied, throttling, 5xx, failed attempts, hangs), clock advances and SnapStart events, and
// checks every answer against what a small reference model of upstream allows.
//
// Reproduce a failure with PSCACHE_MODEL_SEED=<seed printed> (and PSCACHE_MODEL_RUNS for more runs).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { AwsCallError } from '../src/aws/types.ts';
import { type Answer, ItemCache, JOIN_LIMIT_MS, REFRESH_SHARE_MS } from '../src/cache/index.ts';
import type { ItemRequest, Loaded, PathRequest } from '../src/items.ts';
import type { LoadContext, Loader, Outcome, PathListing } from '../src/loader/index.ts';
import { FakeClock, settle } from './helpers/fake-time.ts';

const TTL = 5000;
const STALE = 3000;
const WAIT = 20_000;

/** What upstream holds for each object: a version, or gone. */
type State =
  | { v: number }
  | { gone: 'ResourceNotFoundException' | 'ParameterNotFound' | 'AccessDeniedException' };

/** The objects: two secrets, a String parameter (same answer with or without decryption), a SecureString. */
const OBJECTS = ['sa', 'sb', '/p', '/s'] as const;
type Obj = (typeof OBJECTS)[number];

/** Every distinct key a read can name. */
const ITEMS: Array<{ obj: Obj; r: ItemRequest }> = [
  { obj: 'sa', r: { service: 'secretsmanager', secretId: 'sa' } },
  { obj: 'sb', r: { service: 'secretsmanager', secretId: 'sb' } },
  { obj: '/p', r: { service: 'ssm', name: '/p', withDecryption: false } },
  { obj: '/p', r: { service: 'ssm', name: '/p', withDecryption: true } },
  { obj: '/s', r: { service: 'ssm', name: '/s', withDecryption: false } },
  { obj: '/s', r: { service: 'ssm', name: '/s', withDecryption: true } },
];
const itemKey = (r: ItemRequest) =>
  r.service === 'secretsmanager' ? r.secretId : `${r.name}:${r.withDecryption ? 'dec' : 'raw'}`;
const objOf = (r: ItemRequest): Obj =>
  r.service === 'secretsmanager' ? (r.secretId as Obj) : (r.name as Obj);

/** What a body says about itself: which object, its version, the decryption flag (SecureString), the load. */
interface Stamp {
  o: string;
  v: number;
  d?: boolean;
  l: number;
}

interface ModelLoad {
  id: number;
  kind: 'one' | 'many' | 'path';
  startedAt: number;
  /** Event number when it started (orders loads against reads and answers). */
  event: number;
  /** Per requested item, the state captured when the load started (it read upstream then). */
  items: Array<{ r: ItemRequest; state: State }>;
  path: PathRequest | undefined;
  ctx: LoadContext | undefined;
  settled: boolean;
  resolve(v: Loaded | Outcome[] | PathListing): void;
  reject(e: unknown): void;
}

type Mode = 'plain' | 'refresh' | 'ttl0' | 'ttl1s';

interface Read {
  id: number;
  keys: string[];
  mode: Mode | 'many' | 'path';
  event: number;
  arrivedAt: number;
  inWindow: boolean;
  done: boolean;
}

type Action =
  | { kind: 'read'; item: number; mode: Mode }
  | { kind: 'many'; items: number[] }
  | { kind: 'path'; withDecryption: boolean }
  | { kind: 'rotate' | 'delete' | 'deny' | 'restore'; obj: number }
  | { kind: 'answer'; pick: number; how: 'value' | 'retry' | 'throttle' | '5xx' }
  | { kind: 'advance'; ms: number }
  | { kind: 'window' }
  | { kind: 'invoke' };

const action: fc.Arbitrary<Action> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant('read' as const),
      item: fc.nat(ITEMS.length - 1),
      mode: fc.constantFrom<Mode>('plain', 'plain', 'refresh', 'ttl0', 'ttl1s'),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('many' as const),
      items: fc.uniqueArray(fc.nat(ITEMS.length - 1), { minLength: 1, maxLength: 4 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('path' as const), withDecryption: fc.boolean() }) },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constantFrom(
        'rotate' as const,
        'rotate' as const,
        'delete' as const,
        'deny' as const,
        'restore' as const,
      ),
      obj: fc.nat(OBJECTS.length - 1),
    }),
  },
  {
    weight: 7,
    arbitrary: fc.record({
      kind: fc.constant('answer' as const),
      pick: fc.nat(),
      how: fc.constantFrom(
        'value' as const,
        'value' as const,
        'value' as const,
        'retry' as const,
        'throttle' as const,
        '5xx' as const,
      ),
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('advance' as const),
      ms: fc.constantFrom(1, 50, 500, 999, 1001, 2500, 4600, 5100, 9000, 10_001, 21_000),
    }),
  },
  { weight: 1, arbitrary: fc.constantFrom({ kind: 'window' as const }, { kind: 'invoke' as const }) },
);

async function run(actions: Action[], focus: number[]): Promise<void> {
  const clock = new FakeClock();
  const world = new Map<Obj, State>(OBJECTS.map((o) => [o, { v: 1 }]));
  const loads: ModelLoad[] = [];
  let event = 0;
  /** The read being made while the cache starts loads synchronously: the load's cause. */
  let cause: Read | undefined;
  const causes = new Map<ModelLoad, Read | undefined>();
  const stampLoad = new Map<number, ModelLoad>();

  const bodyFor = (r: ItemRequest, state: { v: number }, load: number): Loaded => {
    const o = objOf(r);
    const stamp: Stamp =
      o === '/s' && r.service === 'ssm'
        ? { o, v: state.v, d: r.withDecryption, l: load }
        : { o, v: state.v, l: load };
    return o === '/p'
      ? { body: Buffer.from(JSON.stringify(stamp)), plain: true }
      : { body: Buffer.from(JSON.stringify(stamp)) };
  };
  /** Which load answered each NotFound/AccessDenied (reads sharing a refresh get the same error object). */
  const errorLoad = new WeakMap<object, ModelLoad>();
  const goneError = (s: State, l: ModelLoad) => {
    if (!('gone' in s)) return undefined;
    const e = new AwsCallError(s.gone, 'gone', 'aws', 400);
    errorLoad.set(e, l);
    return e;
  };
  /** Versions keep counting across a deletion: a restored object is a newer version. */
  const versions = new Map<Obj, number>();

  const loader: Loader = {
    one: (r, ctx) => add('one', [r], undefined, ctx) as Promise<Loaded>,
    many: (rs, ctx) => add('many', rs, undefined, ctx) as Promise<Outcome[]>,
    path: (p, ctx) => add('path', [], p, ctx) as Promise<PathListing>,
  };
  function add(
    kind: ModelLoad['kind'],
    rs: readonly ItemRequest[],
    path: PathRequest | undefined,
    ctx: LoadContext | undefined,
  ) {
    return new Promise((resolve, reject) => {
      const pathItems: ItemRequest[] = path
        ? ['/p', '/s'].map((name) => ({ service: 'ssm' as const, name, withDecryption: path.withDecryption }))
        : [];
      const l: ModelLoad = {
        id: loads.length,
        kind,
        startedAt: clock.now(),
        event: ++event,
        items: [...rs, ...pathItems].map((r) => ({ r, state: { ...world.get(objOf(r))! } })),
        path,
        ctx,
        settled: false,
        resolve: (v) => {
          l.settled = true;
          resolve(v);
        },
        reject: (e) => {
          l.settled = true;
          reject(e);
        },
      };
      loads.push(l);
      stampLoad.set(l.id, l);
      causes.set(l, cause);
    });
  }

  const cache = new ItemCache({
    enabled: true,
    maxItems: 100,
    maxBytes: 1 << 20,
    ttlMs: { ssm: TTL, secretsmanager: TTL },
    staleIfErrorMs: STALE,
    loader,
    waitLimitMs: { ssm: WAIT, secretsmanager: WAIT },
    clock,
    jitter: () => 1,
  });

  // What the model remembers to judge answers by.
  const reads: Read[] = [];
  /** Per key: the newest version a refreshNow answered, and when (event) it answered. */
  const refreshedTo = new Map<string, { v: number; event: number }>();
  /** Per key: the latest NotFound/AccessDenied answered, the event it was answered at and the load's start. */
  const goneAt = new Map<string, { event: number; loadEvent: number }>();
  let clearedAt = 0;
  let windowOpen = false;
  const failures: string[] = [];
  const fail = (what: string) => failures.push(what);

  function check(read: Read, key: string, item: ItemRequest, a: Answer | undefined, error: unknown): void {
    const now = clock.now();
    if (now - read.arrivedAt > WAIT) fail(`read ${read.id} of ${key} waited ${now - read.arrivedAt} ms`);
    if (a === undefined) {
      if (error instanceof AwsCallError && error.kind === 'aws') {
        const load = errorLoad.get(error);
        if (!load) fail(`read ${read.id} of ${key}: ${error.code} from no load`);
        else goneAt.set(key, { event: ++event, loadEvent: load.event });
      } else if (!(error instanceof AwsCallError)) {
        fail(`read ${read.id} of ${key} failed with a non-upstream error: ${String(error)}`);
      }
      return;
    }
    const stamp = JSON.parse(a.body.toString()) as Stamp;
    const load = stampLoad.get(stamp.l)!;
    // Never a value of another key or decryption flag.
    if (stamp.o !== objOf(item)) fail(`read ${read.id} of ${key} got ${stamp.o}`);
    if (stamp.d !== undefined && item.service === 'ssm' && stamp.d !== item.withDecryption)
      fail(`read ${read.id} of ${key} got the other decryption flag's answer`);
    // After a refreshNow answered, no read that arrived later gets an older value.
    const floor = refreshedTo.get(key);
    if (floor && read.event > floor.event && stamp.v < floor.v)
      fail(`read ${read.id} of ${key} got v${stamp.v} after refreshNow answered v${floor.v}`);
    // Never an answer from before a NotFound/AccessDenied to a read that arrived after it.
    const gone = goneAt.get(key);
    if (gone && read.event > gone.event && load.event < gone.loadEvent)
      fail(`read ${read.id} of ${key} got a value loaded before it was found gone (${a.source})`);
    // Nothing from before the first INVOKE, nor from the cache inside the SnapStart window.
    if (read.event > clearedAt && load.event < clearedAt)
      fail(`read ${read.id} of ${key} got a value from before INVOKE`);
    if (
      read.inWindow &&
      (a.source !== 'miss' || load.event < read.event || load.ctx?.credentialsSince === undefined)
    )
      fail(`read ${read.id} of ${key} in the SnapStart window was not loaded afresh with fresh credentials`);
    // No read joins a load that may be hung: a miss comes from a load started at most the join limit before.
    if (a.source === 'miss' && load.startedAt < read.arrivedAt - JOIN_LIMIT_MS)
      fail(`read ${read.id} of ${key} joined a load ${read.arrivedAt - load.startedAt} ms old`);
    // refreshNow and ttl=0 take a value loaded after they arrived, or one shared from a refresh under a second old.
    if (
      (read.mode === 'refresh' || read.mode === 'ttl0') &&
      a.source !== 'stale' &&
      read.arrivedAt - load.startedAt >= REFRESH_SHARE_MS
    )
      fail(
        `read ${read.id} of ${key} (${read.mode}) got a value loaded ${read.arrivedAt - load.startedAt} ms before it`,
      );
    if (read.mode === 'refresh' && a.source !== 'stale') {
      const prev = refreshedTo.get(key);
      if (!prev || prev.v <= stamp.v) refreshedTo.set(key, { v: stamp.v, event: ++event });
    }
  }

  const track = (read: Read, items: ItemRequest[], p: Promise<Array<{ a?: Answer; e?: unknown }>>) => {
    reads.push(read);
    p.then((outs) => {
      read.done = true;
      outs.forEach((o, i) => {
        check(read, read.keys[i]!, items[i]!, o.a, o.e);
      });
    });
  };

  for (const act of actions) {
    if (failures.length > 0) break;
    switch (act.kind) {
      case 'read': {
        const { r } = ITEMS[focus[act.item % focus.length]!]!;
        const o =
          act.mode === 'refresh'
            ? { refresh: true }
            : act.mode === 'ttl0'
              ? { ttlMs: 0 }
              : act.mode === 'ttl1s'
                ? { ttlMs: 1000 }
                : undefined;
        const read: Read = {
          id: reads.length,
          keys: [itemKey(r)],
          mode: act.mode,
          event: ++event,
          arrivedAt: clock.now(),
          inWindow: windowOpen,
          done: false,
        };
        let p: Promise<Answer>;
        cause = read;
        try {
          p = Promise.resolve(cache.get(r, o));
        } catch (e) {
          p = Promise.reject(e);
        }
        cause = undefined;
        track(
          read,
          [r],
          p.then(
            (a) => [{ a }],
            (e: unknown) => [{ e }],
          ),
        );
        break;
      }
      case 'many': {
        const rs = [...new Set(act.items.map((i) => focus[i % focus.length]!))].map((i) => ITEMS[i]!.r);
        const read: Read = {
          id: reads.length,
          keys: rs.map(itemKey),
          mode: 'many',
          event: ++event,
          arrivedAt: clock.now(),
          inWindow: windowOpen,
          done: false,
        };
        track(
          read,
          rs,
          cache.getMany(rs).then((xs) => xs.map((x) => (x.ok ? { a: x.answer } : { e: x.error }))),
        );
        break;
      }
      case 'path': {
        // Path answers are listings: checked for their deadline; their items are checked through later reads.
        const read: Read = {
          id: reads.length,
          keys: [],
          mode: 'path',
          event: ++event,
          arrivedAt: clock.now(),
          inWindow: windowOpen,
          done: false,
        };
        reads.push(read);
        let p: Promise<Answer>;
        try {
          p = Promise.resolve(
            cache.getPath({ path: '/', recursive: true, withDecryption: act.withDecryption }),
          );
        } catch (e) {
          p = Promise.reject(e);
        }
        p.then(
          () => {
            read.done = true;
          },
          () => {
            read.done = true;
          },
        );
        break;
      }
      case 'rotate': {
        const o = objOf(ITEMS[focus[act.obj % focus.length]!]!.r);
        const s = world.get(o)!;
        if ('v' in s) world.set(o, { v: s.v + 1 });
        break;
      }
      case 'delete':
      case 'deny': {
        const o = objOf(ITEMS[focus[act.obj % focus.length]!]!.r);
        const code =
          act.kind === 'deny'
            ? 'AccessDeniedException'
            : o.startsWith('/')
              ? 'ParameterNotFound'
              : 'ResourceNotFoundException';
        const s = world.get(o)!;
        // Keep counting versions across a deletion: a restored object is a newer version.
        world.set(o, { gone: code });
        versions.set(o, 'v' in s ? s.v : (versions.get(o) ?? 1));
        break;
      }
      case 'restore': {
        const o = objOf(ITEMS[focus[act.obj % focus.length]!]!.r);
        const s = world.get(o)!;
        if ('gone' in s) world.set(o, { v: (versions.get(o) ?? 1) + 1 });
        break;
      }
      case 'answer': {
        const open = loads.filter((l) => !l.settled);
        if (open.length === 0) break;
        const l = open[act.pick % open.length]!;
        event++;
        if (act.how === 'retry') {
          l.ctx?.onRetry?.(new AwsCallError('InternalFailure', 'attempt failed', 'server', 500));
        } else if (act.how === 'throttle') {
          l.reject(new AwsCallError('ThrottlingException', 'Rate exceeded', 'throttled', 400));
        } else if (act.how === '5xx') {
          l.reject(new AwsCallError('InternalFailure', 'boom', 'server', 500));
        } else if (l.kind === 'one') {
          const [x] = l.items;
          const e = goneError(x!.state, l);
          if (e) l.reject(e);
          else l.resolve(bodyFor(x!.r, x!.state as { v: number }, l.id));
        } else if (l.kind === 'many') {
          l.resolve(
            l.items.map((x): Outcome => {
              const e = goneError(x.state, l);
              return e
                ? { ok: false, error: e }
                : { ok: true, loaded: bodyFor(x.r, x.state as { v: number }, l.id) };
            }),
          );
        } else {
          const present = l.items.filter((x) => 'v' in x.state);
          l.resolve({
            body: Buffer.from(JSON.stringify({ path: true, l: l.id })),
            items: present.map((x) => ({
              request: x.r as Extract<ItemRequest, { service: 'ssm' }>,
              loaded: bodyFor(x.r, x.state as { v: number }, l.id),
            })),
          });
        }
        break;
      }
      case 'advance':
        await clock.advance(act.ms);
        break;
      case 'window':
        if (!windowOpen && clearedAt === 0) {
          windowOpen = true;
          cache.restoreWindow();
        }
        break;
      case 'invoke':
        if (windowOpen) {
          windowOpen = false;
          cache.clear();
          clearedAt = ++event;
        }
        break;
    }
    await settle(2);
  }
  // Nothing waits forever: past every deadline, every read has its answer (hung loads included).
  await clock.advance(WAIT + JOIN_LIMIT_MS + 1);
  await settle();
  for (const r of reads) if (!r.done) fail(`read ${r.id} (${r.mode}) never answered`);
  // Every load was started by a read: at most one per item read (and one refresh-ahead per hit).
  const itemReads = reads.reduce((n, r) => n + Math.max(1, r.keys.length), 0);
  if (loads.length > itemReads) fail(`${loads.length} loads for ${itemReads} item reads`);
  // refreshNow and ttl=0 reads of one key start at most one load a second (SnapStart's INVOKE starts afresh).
  const lastRefresh = new Map<string, ModelLoad>();
  for (const l of loads) {
    const c = causes.get(l);
    if (!c || (c.mode !== 'refresh' && c.mode !== 'ttl0') || c.inWindow) continue;
    const key = c.keys[0]!;
    const prev = lastRefresh.get(key);
    const clearedBetween = prev !== undefined && prev.event < clearedAt && clearedAt < l.event;
    if (prev !== undefined && l.startedAt - prev.startedAt < REFRESH_SHARE_MS && !clearedBetween)
      fail(`${key}: refresh loads ${l.startedAt - prev.startedAt} ms apart`);
    lastRefresh.set(key, l);
  }
  assert.deepEqual(failures, []);
}

/** Hand-written sequences every run starts with (focus: secret sa, /p raw, /p decrypted): field reproductions. */
const EXAMPLES: Action[][] = [
  // A hung load: a read past the join limit starts anew; nobody waits past the wait limit.
  [
    { kind: 'read', item: 0, mode: 'plain' },
    { kind: 'advance', ms: 10_001 },
    { kind: 'read', item: 0, mode: 'plain' },
    { kind: 'answer', pick: 1, how: 'value' },
    { kind: 'advance', ms: 21_000 },
  ],
  // refreshNow must not be undone by an older load landing after it.
  [
    { kind: 'read', item: 0, mode: 'plain' },
    { kind: 'rotate', obj: 0 },
    { kind: 'read', item: 0, mode: 'refresh' },
    { kind: 'answer', pick: 1, how: 'value' },
    { kind: 'answer', pick: 0, how: 'value' },
    { kind: 'read', item: 0, mode: 'plain' },
  ],
  // A String parameter deleted while a load of the other decryption flag is in flight.
  [
    { kind: 'read', item: 1, mode: 'plain' },
    { kind: 'delete', obj: 1 },
    { kind: 'read', item: 2, mode: 'plain' },
    { kind: 'answer', pick: 1, how: 'value' },
    { kind: 'answer', pick: 0, how: 'value' },
    { kind: 'read', item: 2, mode: 'plain' },
  ],
  // SnapStart: a load from before the window lands after INVOKE.
  [
    { kind: 'read', item: 0, mode: 'plain' },
    { kind: 'window' },
    { kind: 'read', item: 0, mode: 'plain' },
    { kind: 'invoke' },
    { kind: 'answer', pick: 0, how: 'value' },
    { kind: 'read', item: 0, mode: 'plain' },
  ],
  // SnapStart: a read after INVOKE never joins a load from before it.
  [
    { kind: 'read', item: 0, mode: 'plain' },
    { kind: 'window' },
    { kind: 'invoke' },
    { kind: 'read', item: 0, mode: 'plain' },
    { kind: 'answer', pick: 0, how: 'value' },
    { kind: 'answer', pick: 0, how: 'value' },
  ],
  // A ttl=0 load's answer, shared by a refreshNow, outdates the entry a plain read would find.
  [
    { kind: 'read', item: 0, mode: 'plain' },
    { kind: 'rotate', obj: 0 },
    { kind: 'answer', pick: 0, how: 'value' },
    { kind: 'read', item: 0, mode: 'ttl0' },
    { kind: 'answer', pick: 0, how: 'value' },
    { kind: 'read', item: 0, mode: 'refresh' },
    { kind: 'read', item: 0, mode: 'plain' },
  ],
  // NotFound on refreshNow evicts the cached value.
  [
    { kind: 'read', item: 0, mode: 'plain' },
    { kind: 'answer', pick: 0, how: 'value' },
    { kind: 'delete', obj: 0 },
    { kind: 'read', item: 0, mode: 'refresh' },
    { kind: 'answer', pick: 0, how: 'value' },
    { kind: 'read', item: 0, mode: 'plain' },
  ],
];

test('model: random reads, upstream changes, answer orders, clock and SnapStart events keep every guarantee', async (t) => {
  const seed = Number(process.env['PSCACHE_MODEL_SEED'] ?? Date.now() % 2_147_483_647);
  const numRuns = Number(process.env['PSCACHE_MODEL_RUNS'] ?? 1000);
  t.diagnostic(`model seed ${seed}, ${numRuns} runs (PSCACHE_MODEL_SEED=${seed} to replay)`);
  console.log(`model seed ${seed}, ${numRuns} runs (PSCACHE_MODEL_SEED=${seed} to replay)`);
  await fc.assert(
    fc.asyncProperty(
      fc.array(action, { minLength: 1, maxLength: 50 }),
      // Each run reads a few keys only, so that its reads, changes and answers meet on them.
      fc.uniqueArray(fc.nat(ITEMS.length - 1), { minLength: 1, maxLength: 3 }),
      async (actions, focus) => {
        await run(actions, focus);
      },
    ),
    { seed, numRuns, examples: EXAMPLES.map((e) => [e, [0, 2, 3]] as [Action[], number[]]) },
  );
});
