// Model-based test of the cache core against a reference model written from the guarantees in
// docs/architecture.md, not from the code. fast-check draws random sequences of reads (plain, refreshNow,
// ttl=0, a short ttl, batch, path listing; as the base credentials or a role; by name, version or label),
// upstream changes (new values, deletion, restore, denial to one role, a label moved), answers released in
// any order (values, NotFound/AccessDenied, throttling, 5xx, failed attempts, listing pages), clock jumps
// past every internal lifetime, and SnapStart events. For every answer the model knows what upstream held
// and when, and judges:
//
// - identity: the object, decryption flag, role and selector asked for;
// - floors: after a refreshNow or ttl=0 answer, or a NotFound/AccessDenied, no read that arrives later gets
//   what upstream held before it (unless it reads the same); for a String both flags, for a deletion both
//   flags and the listings that showed it;
// - freshness: a hit within its TTL of the load that stored it (a refresh's hit within a second of that
//   load's start), stale only within the stale window and only when a load of the object failed or
//   retried around the read, or the read waited the stale wait; a miss from a load that showed progress
//   within the join limit;
// - liveness: every read answered within the wait limit; an error only from a load that failed, or a
//   timeout at the wait limit; a read that joined a load which returned a value gets it;
// - caching: a plain read of a key whose newest load stored a value moments ago is a hit; a plain miss
//   while a joinable load of its key runs joins it; refreshNow/ttl=0 loads of a key at most one a second;
// - accounting: the hit, miss and stale counters match the answers' labels; afterwards no share, mark or
//   load slot is left.
//
// Reproduce a failure with PSCACHE_MODEL_SEED=<seed printed> (and PSCACHE_MODEL_RUNS for more runs).
import { test } from 'node:test';
import fc from 'fast-check';
import { AwsCallError } from '../src/aws/types.ts';
import { type Answer, ItemCache, REFRESH_SHARE_MS } from '../src/cache/index.ts';
import type { ItemRequest, Loaded, ParameterRequest, PathRequest } from '../src/items.ts';
import type { LoadContext, Loader, Outcome, PathListing } from '../src/loader/index.ts';
import { FakeClock, settle } from './helpers/fake-time.ts';

const TTL = 5000;
const STALE = 3000;
const WAIT = 20_000;
const JOIN = 8000;
const STALE_WAIT = 700;
const RETRY_PAUSE = 1000;
const ROLE = 'arn:aws:iam::123456789012:role/model';

type Obj = 'sa' | 'sb' | '/p' | '/s';
const OBJECTS: readonly Obj[] = ['sa', 'sb', '/p', '/s'];
/** Whether the object reads the same decrypted or not (a String parameter, or a secret). */
const PLAIN: Record<Obj, boolean> = { sa: true, sb: true, '/p': true, '/s': false };
type Role = '' | 'R';
type Sel = '' | 'L' | '1';

/** One readable key: an object, as a role, with a selector and a decryption flag. */
interface Item {
  obj: Obj;
  role: Role;
  sel: Sel;
  d: boolean;
  r: ItemRequest;
}

function item(obj: Obj, role: Role, sel: Sel, d: boolean): Item {
  const roleArn = role === 'R' ? { roleArn: ROLE } : {};
  const r: ItemRequest = obj.startsWith('/')
    ? {
        service: 'ssm',
        name: obj,
        withDecryption: d,
        ...(sel === 'L' ? { label: 'L' } : sel === '1' ? { version: '1' } : {}),
        ...roleArn,
      }
    : { service: 'secretsmanager', secretId: obj, ...roleArn };
  return { obj, role, sel, d, r };
}

const ITEMS: Item[] = [
  item('sa', '', '', false),
  item('sb', '', '', false),
  item('/p', '', '', false),
  item('/p', '', '', true),
  item('/s', '', '', false),
  item('/s', '', '', true),
  item('sa', 'R', '', false),
  item('/p', 'R', '', false),
  item('/p', '', 'L', false),
  item('/p', '', '1', true),
];
/** The path listing reads every parameter as the base credentials. */
const PATH_OBJECTS: readonly Obj[] = ['/p', '/s'];

/** The read key (what one read names), finer than keyOf for String parameters. */
const readKeyOf = (i: Item) => `${i.role}|${i.obj}|${i.sel}|${i.d ? 1 : 0}`;
/** Reads of one group share deletion floors (both decryption flags of one name, role and selector). */
const groupOf = (i: { role: Role; obj: Obj; sel: Sel }) => `${i.role}|${i.obj}|${i.sel}`;
const itemOf = (r: ItemRequest): Item => {
  const found = ITEMS.find((i) => sameRequest(i.r, r));
  if (!found) throw new Error(`no model item for ${JSON.stringify(r)}`);
  return found;
};
function sameRequest(a: ItemRequest, b: ItemRequest): boolean {
  if (a.service !== b.service || (a.roleArn ?? '') !== (b.roleArn ?? '')) return false;
  if (a.service === 'secretsmanager' && b.service === 'secretsmanager') return a.secretId === b.secretId;
  if (a.service === 'ssm' && b.service === 'ssm') {
    return (
      a.name === b.name &&
      a.withDecryption === b.withDecryption &&
      (a.label ?? '') === (b.label ?? '') &&
      (a.version ?? '') === (b.version ?? '')
    );
  }
  return false;
}

/** What a view (an object as a role) reads as: a version, or an error code. */
type Content = { v: number } | { gone: string };
const sameContent = (a: Content, b: Content) =>
  'v' in a ? 'v' in b && a.v === b.v : 'gone' in b && a.gone === b.gone;

/** A body says what it is: object, version, selector, decryption flag (SecureString), role, load. */
interface Stamp {
  o: Obj;
  v: number;
  s: Sel;
  d?: boolean;
  r: Role;
  l: number;
}
interface PathStamp {
  path: true;
  d: boolean;
  l: number;
  shows: Array<{ o: Obj; v: number }>;
}

type ReadMode = 'plain' | 'refresh' | 'ttl0' | 'ttl1s';

interface ModelLoad {
  id: number;
  kind: 'one' | 'many' | 'path';
  event: number;
  startedAt: number;
  /** Every moment it showed progress: its start, each failed attempt, each page. */
  progress: number[];
  endedAt: number | undefined;
  /** What it read, per item: the content and the view's epoch when it started (it read upstream then). */
  items: Array<{ item: Item; content: Content; epoch: number }>;
  path: PathRequest | undefined;
  ctx: LoadContext | undefined;
  /** The read that started it (undefined: refresh-ahead, or a path or batch started for several). */
  cause: Read | undefined;
  settled: boolean;
  outcome: 'value' | 'gone' | 'transient' | undefined;
  /** Clock times at which an attempt failed (retry) or it failed transiently. */
  failures: number[];
  /** The model event at which it was answered. */
  endedEvent: number | undefined;
  resolve(v: Loaded | Outcome[] | PathListing): void;
  reject(e: unknown): void;
}

interface Read {
  id: number;
  items: Item[];
  mode: ReadMode | 'many' | 'path';
  pathD: boolean;
  event: number;
  arrivedAt: number;
  inWindow: boolean;
  answered: boolean;
}

type Action =
  | { kind: 'read'; item: number; mode: ReadMode }
  | { kind: 'many'; items: number[] }
  | { kind: 'path'; d: boolean }
  | { kind: 'rotate' | 'delete' | 'restore' | 'relabel'; obj: number }
  | { kind: 'deny' | 'allow'; obj: number }
  | { kind: 'answer'; pick: number; how: 'value' | 'retry' | 'throttle' | '5xx' | 'page' }
  | { kind: 'advance'; ms: number }
  | { kind: 'window' }
  | { kind: 'invoke' };

// Every internal lifetime and a step either side: share 1 s, retry pause 1 s, stale wait, TTL and its
// last tenth, stale window, join limit, wait limit.
const STEPS = [
  1, 50, 699, 701, 999, 1000, 1001, 2500, 4499, 4501, 5001, 7999, 8001, 8100, 19_999, 20_001, 40_000,
];

const action: fc.Arbitrary<Action> = fc.oneof(
  {
    weight: 8,
    arbitrary: fc.record({
      kind: fc.constant('read' as const),
      item: fc.nat(ITEMS.length - 1),
      mode: fc.constantFrom<ReadMode>('plain', 'plain', 'plain', 'refresh', 'ttl0', 'ttl1s'),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('many' as const),
      items: fc.uniqueArray(fc.nat(ITEMS.length - 1), { minLength: 1, maxLength: 4 }),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('path' as const), d: fc.boolean() }) },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constantFrom(
        'rotate' as const,
        'rotate' as const,
        'delete' as const,
        'restore' as const,
        'relabel' as const,
      ),
      obj: fc.nat(OBJECTS.length - 1),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constantFrom('deny' as const, 'allow' as const), obj: fc.nat(3) }),
  },
  {
    weight: 9,
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
        'page' as const,
      ),
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({ kind: fc.constant('advance' as const), ms: fc.constantFrom(...STEPS) }),
  },
  { weight: 1, arbitrary: fc.constantFrom({ kind: 'window' as const }, { kind: 'invoke' as const }) },
);

interface RunOptions {
  /** The stale wait of the cache under test (0: reads with a stale value wait for the load). */
  staleWait: number;
  /** Marks kept at once: small runs drop marks for room and raise the floor. */
  marks: number;
}

async function run(actions: Action[], focus: number[], opts: RunOptions): Promise<void> {
  const clock = new FakeClock();
  let event = 0;
  const failures: string[] = [];
  const fail = (what: string): void => {
    failures.push(what);
  };

  // ---- upstream -------------------------------------------------------------------------------------
  const world = new Map<Obj, Content>(OBJECTS.map((o) => [o, { v: 1 }]));
  /** The newest version each object ever had (a restore is a newer version). */
  const versions = new Map<Obj, number>(OBJECTS.map((o) => [o, 1]));
  let labelAt = 1;
  const denied = new Set<Obj>();
  /** Per view (object + role): bumped by every change that view could see. */
  const epochs = new Map<string, number>();
  const viewOf = (o: Obj, role: Role) => `${o}|${role}`;
  const epochOf = (o: Obj, role: Role) => epochs.get(viewOf(o, role)) ?? 0;
  const bump = (o: Obj, roles: Role[] = ['', 'R']) => {
    for (const role of roles) epochs.set(viewOf(o, role), epochOf(o, role) + 1);
  };
  const notFoundCode = (i: Item) =>
    i.obj.startsWith('/') ? 'ParameterNotFound' : 'ResourceNotFoundException';
  /** What upstream answers a read of `i` now. */
  const contentOf = (i: Item): Content => {
    if (i.role === 'R' && denied.has(i.obj)) return { gone: 'AccessDeniedException' };
    const s = world.get(i.obj)!;
    if ('gone' in s) return { gone: notFoundCode(i) };
    if (i.sel === '1') return { v: 1 };
    if (i.sel === 'L') return { v: Math.min(labelAt, s.v) };
    return s;
  };

  // ---- the loader: every load waits for the model to answer it ---------------------------------------
  const loads: ModelLoad[] = [];
  let cause: Read | undefined;
  const errorLoad = new WeakMap<object, ModelLoad>();
  const loader: Loader = {
    one: (r, ctx) => add('one', [itemOf(r)], undefined, ctx) as Promise<Loaded>,
    many: (rs, ctx) => add('many', rs.map(itemOf), undefined, ctx) as Promise<Outcome[]>,
    path: (p, ctx) => add('path', [], p, ctx) as Promise<PathListing>,
  };
  function add(
    kind: ModelLoad['kind'],
    its: Item[],
    path: PathRequest | undefined,
    ctx: LoadContext | undefined,
  ) {
    return new Promise((resolve, reject) => {
      const covered = path ? PATH_OBJECTS.map((o) => item(o, '', '', path.withDecryption)) : its;
      const l: ModelLoad = {
        id: loads.length,
        kind,
        event: ++event,
        startedAt: clock.now(),
        progress: [clock.now()],
        endedAt: undefined,
        items: covered.map((i) => ({ item: i, content: contentOf(i), epoch: epochOf(i.obj, i.role) })),
        path,
        ctx,
        cause,
        settled: false,
        outcome: undefined,
        failures: [],
        endedEvent: undefined,
        resolve: (v) => {
          l.settled = true;
          l.endedAt = clock.now();
          l.endedEvent = ++event;
          resolve(v);
        },
        reject: (e) => {
          l.settled = true;
          l.endedAt = clock.now();
          l.endedEvent = ++event;
          reject(e);
        },
      };
      loads.push(l);
    });
  }
  const bodyFor = (i: Item, v: number, l: number): Loaded => {
    const stamp: Stamp = { o: i.obj, v, s: i.sel, r: i.role, l, ...(PLAIN[i.obj] ? {} : { d: i.d }) };
    const body = Buffer.from(JSON.stringify(stamp));
    return PLAIN[i.obj] && i.obj.startsWith('/') ? { body, plain: true } : { body };
  };
  const goneError = (c: Content, l: ModelLoad) => {
    if (!('gone' in c)) return undefined;
    const e = new AwsCallError(c.gone, 'gone', 'aws', 400);
    errorLoad.set(e, l);
    return e;
  };
  const transient = (l: ModelLoad, how: 'throttle' | '5xx') => {
    const e =
      how === 'throttle'
        ? new AwsCallError('ThrottlingException', 'Rate exceeded', 'throttled', 400)
        : new AwsCallError('InternalFailure', 'boom', 'server', 500);
    errorLoad.set(e, l);
    return e;
  };

  const cache = new ItemCache({
    enabled: true,
    maxItems: 100,
    maxBytes: 1 << 20,
    ttlMs: { ssm: TTL, secretsmanager: TTL },
    staleIfErrorMs: STALE,
    staleWaitMs: opts.staleWait,
    loader,
    waitLimitMs: { ssm: WAIT, secretsmanager: WAIT },
    joinLimitMs: { ssm: JOIN, secretsmanager: JOIN },
    markBounds: { maxItems: opts.marks, maxBytes: 1 << 20 },
    clock,
    jitter: () => 1,
  });

  // ---- what the model remembers to judge answers by ---------------------------------------------------
  const reads: Read[] = [];
  /** Per read key (and per path listing flag + object): the latest floor, the event it was set at. */
  const floors = new Map<string, { epoch: number; content: Content; event: number }>();
  const pathFloorKey = (d: boolean, o: Obj) => `path|${d ? 1 : 0}|${o}`;
  const raiseFloor = (key: string, epoch: number, content: Content) => {
    const f = floors.get(key);
    if (!f || f.epoch <= epoch) floors.set(key, { epoch, content, event: ++event });
  };
  const checkFloor = (read: Read, key: string, epoch: number, content: Content, what: string) => {
    const f = floors.get(key);
    if (f && read.event > f.event && epoch < f.epoch && !sameContent(content, f.content))
      fail(
        `read ${read.id} (${read.mode}) of ${what}: ${JSON.stringify(content)} read before a floor of ${JSON.stringify(f.content)}`,
      );
  };
  let clearedAt = 0;
  let windowOpen = false;
  const counted = { hits: 0, misses: 0, stale: 0 };

  /** Loads that read object `o` for `role`'s view, whichever key they came through. */
  const loadsOfGroup = (g: string) => loads.filter((l) => l.items.some((x) => groupOf(x.item) === g));
  const covers = (l: ModelLoad, i: Item) =>
    l.items.some((x) => groupOf(x.item) === groupOf(i) && (PLAIN[i.obj] || x.item.d === i.d));

  /** Whether a stale answer to a read of `i` between `from` and `to` is justified. */
  const staleJustified = (i: Item, arrived: number, answered: number) => {
    if (answered - arrived >= WAIT) return true;
    if (opts.staleWait > 0 && answered - arrived >= opts.staleWait) return true;
    return loadsOfGroup(groupOf(i)).some((l) =>
      l.failures.some(
        (t) =>
          (t >= arrived - RETRY_PAUSE && t <= answered) ||
          // A load that failed an attempt and still ran when the read came.
          (t <= arrived && (l.endedAt === undefined || l.endedAt >= arrived)),
      ),
    );
  };

  function checkItem(read: Read, i: Item, a: Answer | undefined, error: unknown, sync: boolean): void {
    const now = clock.now();
    const waited = now - read.arrivedAt;
    const what = readKeyOf(i);
    if (waited > WAIT) fail(`read ${read.id} of ${what} waited ${waited} ms`);
    if (a === undefined) {
      if (sync) counted.hits++;
      else counted.misses++;
      if (!(error instanceof AwsCallError)) {
        fail(`read ${read.id} of ${what} failed with a non-upstream error: ${String(error)}`);
        return;
      }
      if (error.code === 'TimeoutError' && !errorLoad.has(error)) {
        if (waited < WAIT) fail(`read ${read.id} of ${what}: a timeout after only ${waited} ms`);
        return;
      }
      const l = errorLoad.get(error);
      if (!l) {
        fail(`read ${read.id} of ${what}: ${error.code} from no load`);
        return;
      }
      const related =
        error.kind === 'aws' ? l.items.some((y) => groupOf(y.item) === groupOf(i)) : covers(l, i);
      if (!related) {
        fail(`read ${read.id} of ${what}: ${error.code} from a load of something else`);
        return;
      }
      if (error.kind === 'aws') {
        const x = l.items.find((y) => groupOf(y.item) === groupOf(i))!;
        checkFloor(read, what, x.epoch, x.content, what);
        if (read.mode !== 'path' && !read.inWindow) gone(i, x.epoch, x.content);
      }
      return;
    }
    if (a.source === 'hit') counted.hits++;
    else if (a.source === 'stale') counted.stale++;
    else counted.misses++;
    const stamp = JSON.parse(a.body.toString()) as Stamp;
    const l = loads[stamp.l]!;
    // Identity: the object, role, selector and (SecureString) decryption flag asked for.
    if (stamp.o !== i.obj || stamp.r !== i.role || stamp.s !== i.sel) {
      fail(`read ${read.id} of ${what} got ${JSON.stringify(stamp)}`);
      return;
    }
    if (stamp.d !== undefined && stamp.d !== i.d) {
      fail(`read ${read.id} of ${what}: the other flag's answer`);
      return;
    }
    const x = l.items.find(
      (y) => readKeyOf(y.item) === readKeyOf(i) || (PLAIN[i.obj] && groupOf(y.item) === groupOf(i)),
    );
    if (!x) {
      fail(`read ${read.id} of ${what}: answered from load ${l.id}, which read no such thing`);
      return;
    }
    const content: Content = { v: stamp.v };
    checkFloor(read, what, x.epoch, content, what);
    // SnapStart: nothing from before the first INVOKE; inside the window, only a fresh load with new credentials.
    if (read.event > clearedAt && l.event < clearedAt)
      fail(`read ${read.id} of ${what}: a value from before INVOKE`);
    if (
      read.inWindow &&
      (a.source !== 'miss' || l.event < read.event || l.ctx?.credentialsSince === undefined)
    )
      fail(`read ${read.id} of ${what} in the SnapStart window was not loaded afresh`);
    if (a.source === 'hit') {
      if (!sync) fail(`read ${read.id} of ${what}: a hit that waited`);
      if (read.mode === 'refresh' || read.mode === 'ttl0') {
        if (read.arrivedAt - l.startedAt >= REFRESH_SHARE_MS)
          fail(
            `read ${read.id} of ${what} (${read.mode}): shared a load ${read.arrivedAt - l.startedAt} ms old`,
          );
      } else {
        const life = read.mode === 'ttl1s' ? 1000 : TTL;
        if (l.endedAt === undefined || read.arrivedAt >= l.endedAt + life)
          fail(
            `read ${read.id} of ${what}: a hit ${read.arrivedAt - (l.endedAt ?? 0)} ms after its load, TTL ${life}`,
          );
      }
    } else if (a.source === 'stale') {
      if (read.mode === 'refresh' || read.mode === 'ttl0')
        fail(`read ${read.id} of ${what} (${read.mode}) got a stale value`);
      if (l.endedAt === undefined || read.arrivedAt > l.endedAt + TTL + STALE)
        fail(`read ${read.id} of ${what}: stale past the stale window`);
      if (!staleJustified(i, read.arrivedAt, now))
        fail(`read ${read.id} of ${what}: stale after ${waited} ms with no failure of its load`);
    } else {
      // A miss: from a load that started after the read, or that showed progress within the join limit.
      const before = l.progress.filter((t) => t <= read.arrivedAt);
      const last = before.length > 0 ? before[before.length - 1]! : Number.POSITIVE_INFINITY;
      if (l.startedAt < read.arrivedAt && read.arrivedAt - last >= JOIN)
        fail(`read ${read.id} of ${what} joined load ${l.id}, silent for ${read.arrivedAt - last} ms`);
      if (
        (read.mode === 'refresh' || read.mode === 'ttl0') &&
        read.arrivedAt - l.startedAt >= REFRESH_SHARE_MS
      )
        fail(
          `read ${read.id} of ${what} (${read.mode}) joined a load ${read.arrivedAt - l.startedAt} ms old`,
        );
    }
    if ((read.mode === 'refresh' || read.mode === 'ttl0') && !read.inWindow) {
      // A floor for this key; for a String, for the other flag too; and for the listings that show it.
      for (const k of floorKeys(i)) raiseFloor(k, x.epoch, content);
    }
  }

  /** The keys a refresh answer of `i` is a floor for. */
  const floorKeys = (i: Item): string[] => {
    const keys = ITEMS.filter((j) => groupOf(j) === groupOf(i) && (PLAIN[i.obj] || j.d === i.d)).map(
      readKeyOf,
    );
    if (i.role === '' && i.sel === '' && PATH_OBJECTS.includes(i.obj)) {
      for (const d of [false, true]) if (PLAIN[i.obj] || d === i.d) keys.push(pathFloorKey(d, i.obj));
    }
    return keys;
  };
  /** A NotFound/AccessDenied answer: a floor for both flags of the group and for the listings that show it. */
  const gone = (i: Item, epoch: number, content: Content) => {
    for (const j of ITEMS) if (groupOf(j) === groupOf(i)) raiseFloor(readKeyOf(j), epoch, content);
    if (i.role === '' && i.sel === '' && PATH_OBJECTS.includes(i.obj)) {
      for (const d of [false, true]) raiseFloor(pathFloorKey(d, i.obj), epoch, content);
    }
  };

  function checkPath(read: Read, a: Answer | undefined, error: unknown, sync: boolean): void {
    const waited = clock.now() - read.arrivedAt;
    if (waited > WAIT) fail(`path read ${read.id} waited ${waited} ms`);
    if (a === undefined) {
      if (sync) counted.hits++;
      else counted.misses++;
      if (!(error instanceof AwsCallError)) {
        fail(`path read ${read.id}: ${String(error)}`);
        return;
      }
      if (error.code === 'TimeoutError' && !errorLoad.has(error) && waited < WAIT)
        fail(`path read ${read.id}: a timeout after ${waited} ms`);
      return;
    }
    if (a.source === 'hit') counted.hits++;
    else if (a.source === 'stale') counted.stale++;
    else counted.misses++;
    const stamp = JSON.parse(a.body.toString()) as PathStamp;
    const l = loads[stamp.l]!;
    if (stamp.d !== read.pathD) fail(`path read ${read.id}: the other flag's listing`);
    if (read.event > clearedAt && l.event < clearedAt)
      fail(`path read ${read.id}: a listing from before INVOKE`);
    for (const x of l.items) {
      const shown = stamp.shows.find((s) => s.o === x.item.obj);
      const content: Content = shown ? { v: shown.v } : { gone: 'absent' };
      const f = floors.get(pathFloorKey(read.pathD, x.item.obj));
      // A listing that left an item out agrees with a NotFound floor; one that shows it agrees with a value.
      if (f && read.event > f.event && x.epoch < f.epoch) {
        const agrees = 'v' in content ? 'v' in f.content && f.content.v === content.v : 'gone' in f.content;
        if (!agrees)
          fail(
            `path read ${read.id}: shows ${x.item.obj} as ${JSON.stringify(content)} from before a floor of ${JSON.stringify(f.content)}`,
          );
      }
    }
    if (a.source === 'hit' && (l.endedAt === undefined || read.arrivedAt >= l.endedAt + TTL))
      fail(`path read ${read.id}: a hit past the TTL`);
    if (a.source === 'stale' && (l.endedAt === undefined || read.arrivedAt > l.endedAt + TTL + STALE))
      fail(`path read ${read.id}: stale past the stale window`);
  }

  /**
   * Caching and joining, judged when a plain read arrives: a key whose newest load stored a value within
   * the first 90% of its TTL, with nothing of its group started or landed since, must answer a hit; a key
   * whose load runs, showed progress within the join limit and has nothing newer of its group, must be
   * joined, not loaded again. (Runs whose marks table overflows on purpose may refetch: not judged.)
   */
  function expectations(read: Read, i: Item): { mustHit?: ModelLoad; mustJoin?: ModelLoad } {
    if (read.mode !== 'plain' || windowOpen || opts.marks < 1000) return {};
    const t = read.arrivedAt;
    const g = groupOf(i);
    const group = loadsOfGroup(g);
    const newerStarted = (l: ModelLoad) => group.some((o) => o !== l && o.event > l.event);
    const landedAfter = (ev: number) => group.some((o) => o.endedEvent !== undefined && o.endedEvent > ev);
    const shortened = (l: ModelLoad) =>
      reads.some((r) => r.mode === 'ttl1s' && r.items.some((j) => groupOf(j) === g) && r.event > l.event);
    const mustHit = loads.find(
      (l) =>
        l.outcome === 'value' &&
        l.endedEvent !== undefined &&
        l.event > clearedAt &&
        t < l.endedAt! + TTL * 0.9 &&
        covers(l, i) &&
        l.items.some((x) => groupOf(x.item) === g && 'v' in x.content) &&
        (l.cause === undefined || l.cause.mode === 'plain' || l.cause.mode === 'many') &&
        !shortened(l) &&
        !newerStarted(l) &&
        !landedAfter(l.endedEvent),
    );
    const mustJoin = loads.find(
      (l) =>
        l.endedEvent === undefined &&
        l.kind === 'one' &&
        l.cause?.mode === 'plain' &&
        readKeyOf(l.items[0]!.item) === readKeyOf(i) &&
        l.event > clearedAt &&
        t - l.progress[l.progress.length - 1]! < JOIN &&
        !newerStarted(l) &&
        !landedAfter(l.event),
    );
    return { ...(mustHit ? { mustHit } : {}), ...(mustJoin ? { mustJoin } : {}) };
  }

  const track = (read: Read, p: Promise<Array<{ a?: Answer; e?: unknown; sync: boolean }>>) => {
    reads.push(read);
    p.then((outs) => {
      read.answered = true;
      if (read.mode === 'path') {
        const o = outs[0]!;
        checkPath(read, o.a, o.e, o.sync);
        return;
      }
      outs.forEach((o, k) => {
        checkItem(read, read.items[k]!, o.a, o.e, o.sync);
      });
    });
  };
  /** An answer, and whether it came at once (a hit, or an error thrown from the cache's own entry). */
  const answerOf = (
    f: () => Answer | Promise<Answer>,
  ): Promise<{ a?: Answer; e?: unknown; sync: boolean }> => {
    try {
      const x = f();
      if (!(x instanceof Promise)) return Promise.resolve({ a: x, sync: true });
      return x.then(
        (a) => ({ a, sync: false }),
        (e: unknown) => ({ e, sync: false }),
      );
    } catch (e) {
      return Promise.resolve({ e, sync: true });
    }
  };

  const pick = (n: number) => ITEMS[focus[n % focus.length]!]!;
  const objAt = (n: number) => pick(n).obj;

  for (const act of actions) {
    if (failures.length > 0) break;
    switch (act.kind) {
      case 'read': {
        const i = pick(act.item);
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
          items: [i],
          mode: act.mode,
          pathD: false,
          event: ++event,
          arrivedAt: clock.now(),
          inWindow: windowOpen,
          answered: false,
        };
        const expect = expectations(read, i);
        cause = read;
        const p = answerOf(() => cache.get(i.r, o));
        cause = undefined;
        if (expect.mustJoin && loads.some((l) => l.cause === read))
          fail(`read ${read.id} of ${readKeyOf(i)} started a load although load ${expect.mustJoin.id} runs`);
        track(
          read,
          p.then((x) => {
            if (expect.mustHit && x.a?.source !== 'hit')
              fail(
                `read ${read.id} of ${readKeyOf(i)}: load ${expect.mustHit.id} stored it, yet ${x.a?.source ?? 'an error'}`,
              );
            return [x];
          }),
        );
        break;
      }
      case 'many': {
        const its = [...new Set(act.items.map((n) => focus[n % focus.length]!))].map((n) => ITEMS[n]!);
        const read: Read = {
          id: reads.length,
          items: its,
          mode: 'many',
          pathD: false,
          event: ++event,
          arrivedAt: clock.now(),
          inWindow: windowOpen,
          answered: false,
        };
        cause = read;
        const p = cache.getMany(its.map((i) => i.r));
        cause = undefined;
        track(
          read,
          p.then((xs) =>
            xs.map((x) =>
              x.ok ? { a: x.answer, sync: x.answer.source === 'hit' } : { e: x.error, sync: false },
            ),
          ),
        );
        break;
      }
      case 'path': {
        const read: Read = {
          id: reads.length,
          items: [],
          mode: 'path',
          pathD: act.d,
          event: ++event,
          arrivedAt: clock.now(),
          inWindow: windowOpen,
          answered: false,
        };
        cause = read;
        const p = answerOf(() => cache.getPath({ path: '/', recursive: true, withDecryption: act.d }));
        cause = undefined;
        track(
          read,
          p.then((x) => [x]),
        );
        break;
      }
      case 'rotate': {
        const o = objAt(act.obj);
        const s = world.get(o)!;
        if ('v' in s) {
          const v = versions.get(o)! + 1;
          versions.set(o, v);
          world.set(o, { v });
          bump(o);
        }
        break;
      }
      case 'delete': {
        const o = objAt(act.obj);
        if ('v' in world.get(o)!) {
          world.set(o, { gone: 'deleted' });
          bump(o);
        }
        break;
      }
      case 'restore': {
        const o = objAt(act.obj);
        if ('gone' in world.get(o)!) {
          const v = versions.get(o)! + 1;
          versions.set(o, v);
          world.set(o, { v });
          bump(o);
        }
        break;
      }
      case 'relabel': {
        const s = world.get('/p')!;
        if ('v' in s && labelAt !== s.v) {
          labelAt = s.v;
          bump('/p');
        }
        break;
      }
      case 'deny':
      case 'allow': {
        const o = objAt(act.obj);
        if ((act.kind === 'deny') !== denied.has(o)) {
          if (act.kind === 'deny') denied.add(o);
          else denied.delete(o);
          bump(o, ['R']);
        }
        break;
      }
      case 'answer': {
        const open = loads.filter((l) => !l.settled);
        if (open.length === 0) break;
        const l = open[act.pick % open.length]!;
        event++;
        if (act.how === 'retry') {
          l.failures.push(clock.now());
          l.progress.push(clock.now());
          l.ctx?.onRetry?.(new AwsCallError('InternalFailure', 'attempt failed', 'server', 500));
        } else if (act.how === 'page') {
          if (l.kind === 'path') {
            l.progress.push(clock.now());
            l.ctx?.onProgress?.();
          }
        } else if (act.how === 'throttle' || act.how === '5xx') {
          l.failures.push(clock.now());
          l.outcome = 'transient';
          l.reject(transient(l, act.how));
        } else if (l.kind === 'one') {
          const x = l.items[0]!;
          const e = goneError(x.content, l);
          l.outcome = e ? 'gone' : 'value';
          if (e) l.reject(e);
          else l.resolve(bodyFor(x.item, (x.content as { v: number }).v, l.id));
        } else if (l.kind === 'many') {
          l.outcome = 'value';
          l.resolve(
            l.items.map((x): Outcome => {
              const e = goneError(x.content, l);
              return e
                ? { ok: false, error: e }
                : { ok: true, loaded: bodyFor(x.item, (x.content as { v: number }).v, l.id) };
            }),
          );
        } else {
          l.outcome = 'value';
          const present = l.items.filter((x) => 'v' in x.content);
          const stamp: PathStamp = {
            path: true,
            d: l.path!.withDecryption,
            l: l.id,
            shows: present.map((x) => ({ o: x.item.obj, v: (x.content as { v: number }).v })),
          };
          l.resolve({
            body: Buffer.from(JSON.stringify(stamp)),
            items: present.map((x) => ({
              request: x.item.r as ParameterRequest,
              loaded: bodyFor(x.item, (x.content as { v: number }).v, l.id),
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
  await clock.advance(WAIT + JOIN + 1);
  await settle();
  for (const r of reads) if (!r.answered) fail(`read ${r.id} (${r.mode}) never answered`);
  // Every load was started by a read: at most one per item read (and one refresh-ahead per hit).
  const itemReads = reads.reduce((n, r) => n + Math.max(1, r.items.length), 0);
  if (loads.length > itemReads) fail(`${loads.length} loads for ${itemReads} item reads`);
  // refreshNow and ttl=0 reads of one key start at most one load a second, unless something newer of the
  // object (another load of its group) landed or started in between, or INVOKE started afresh.
  const lastRefresh = new Map<string, ModelLoad>();
  // (A marks table that overflows on purpose stops joins of older loads: not judged then.)
  for (const l of opts.marks < 1000 ? [] : loads) {
    const c = l.cause;
    if (!c || (c.mode !== 'refresh' && c.mode !== 'ttl0') || c.inWindow) continue;
    const key = readKeyOf(c.items[0]!);
    const prev = lastRefresh.get(key);
    lastRefresh.set(key, l);
    if (prev === undefined || l.startedAt - prev.startedAt >= REFRESH_SHARE_MS) continue;
    if (prev.event < clearedAt && clearedAt < l.event) continue;
    const g = groupOf(c.items[0]!);
    const between = loadsOfGroup(g).some(
      (o) =>
        o !== prev &&
        o !== l &&
        ((o.event > prev.event && o.event < l.event) ||
          (o.endedAt !== undefined && o.endedAt >= prev.startedAt && o.endedAt <= l.startedAt)),
    );
    if (!between && prev.outcome !== 'transient' && prev.settled)
      fail(`${key}: refresh loads ${l.startedAt - prev.startedAt} ms apart`);
  }
  // The counters match the labels the answers carried.
  const s = cache.stats;
  if (s.hits !== counted.hits || s.stale !== counted.stale || s.misses !== counted.misses)
    fail(
      `stats ${JSON.stringify({ hits: s.hits, misses: s.misses, stale: s.stale })} != answers ${JSON.stringify(counted)}`,
    );
  // Every table beside the entries empties itself once nothing runs.
  for (const l of loads) if (!l.settled) l.reject(new AwsCallError('InternalFailure', 'end', 'server', 500));
  await settle();
  await clock.advance(REFRESH_SHARE_MS * 2);
  const o = cache.overhead;
  if (o.shares !== 0 || o.marks !== 0 || o.slots !== 0) fail(`left behind: ${JSON.stringify(o)}`);
  if (failures.length > 0) throw new Error(`guarantees broken:\n${failures.join('\n')}`);
}

/** Hand-written sequences every run starts with: the field reproductions, as model actions. */
const EXAMPLES: Array<{ focus: number[]; actions: Action[] }> = [
  // 1. refreshNow undone across decryption flags (String /p: item 2 raw, item 3 decrypted).
  {
    focus: [2, 3],
    actions: [
      { kind: 'read', item: 0, mode: 'plain' },
      { kind: 'rotate', obj: 0 },
      { kind: 'read', item: 1, mode: 'ttl0' },
      { kind: 'answer', pick: 1, how: 'value' },
      { kind: 'read', item: 1, mode: 'refresh' },
      { kind: 'answer', pick: 0, how: 'value' },
      { kind: 'read', item: 1, mode: 'plain' },
      { kind: 'read', item: 0, mode: 'plain' },
    ],
  },
  // 2. A deleted parameter comes back through an older listing, after the marks overflowed.
  {
    focus: [2, 4, 5],
    actions: [
      { kind: 'path', d: false },
      { kind: 'delete', obj: 0 },
      { kind: 'read', item: 0, mode: 'plain' },
      { kind: 'answer', pick: 1, how: 'value' },
      { kind: 'read', item: 1, mode: 'plain' },
      { kind: 'read', item: 2, mode: 'plain' },
      { kind: 'answer', pick: 1, how: 'value' },
      { kind: 'answer', pick: 1, how: 'value' },
      { kind: 'answer', pick: 0, how: 'value' },
      { kind: 'read', item: 0, mode: 'plain' },
      { kind: 'path', d: false },
    ],
  },
  // 3. A listing slower than the join limit, read every few seconds, is joined and cached.
  {
    focus: [2],
    actions: [
      { kind: 'path', d: false },
      { kind: 'advance', ms: 4499 },
      { kind: 'answer', pick: 0, how: 'page' },
      { kind: 'path', d: false },
      { kind: 'advance', ms: 4499 },
      { kind: 'answer', pick: 0, how: 'page' },
      { kind: 'path', d: false },
      { kind: 'advance', ms: 4499 },
      { kind: 'answer', pick: 0, how: 'value' },
      { kind: 'path', d: false },
    ],
  },
  // 4. Stale first: an expired entry while upstream hangs.
  {
    focus: [0],
    actions: [
      { kind: 'read', item: 0, mode: 'plain' },
      { kind: 'answer', pick: 0, how: 'value' },
      { kind: 'advance', ms: 5001 },
      { kind: 'read', item: 0, mode: 'plain' },
      { kind: 'advance', ms: 701 },
      { kind: 'read', item: 0, mode: 'plain' },
      { kind: 'advance', ms: 8001 },
      { kind: 'read', item: 0, mode: 'plain' },
    ],
  },
  // 6b. A refreshNow undone by its own late retry.
  {
    focus: [0],
    actions: [
      { kind: 'read', item: 0, mode: 'refresh' },
      { kind: 'advance', ms: 1500 },
      { kind: 'read', item: 0, mode: 'refresh' },
      { kind: 'answer', pick: 1, how: 'value' },
      { kind: 'rotate', obj: 0 },
      { kind: 'answer', pick: 0, how: 'retry' },
      { kind: 'answer', pick: 0, how: 'value' },
      { kind: 'read', item: 0, mode: 'plain' },
    ],
  },
  // 6c. A listing keeps showing what a refreshNow found gone.
  {
    focus: [2],
    actions: [
      { kind: 'path', d: false },
      { kind: 'answer', pick: 0, how: 'value' },
      { kind: 'delete', obj: 0 },
      { kind: 'read', item: 0, mode: 'refresh' },
      { kind: 'answer', pick: 0, how: 'value' },
      { kind: 'path', d: false },
      { kind: 'advance', ms: 5001 },
      { kind: 'path', d: false },
      { kind: 'answer', pick: 0, how: '5xx' },
      { kind: 'path', d: false },
    ],
  },
  // 6d. The one-second share, kept per flag, contradicts the shared entry.
  {
    focus: [2, 3],
    actions: [
      { kind: 'read', item: 0, mode: 'refresh' },
      { kind: 'answer', pick: 0, how: 'value' },
      { kind: 'rotate', obj: 0 },
      { kind: 'read', item: 1, mode: 'ttl0' },
      { kind: 'answer', pick: 0, how: 'value' },
      { kind: 'read', item: 1, mode: 'refresh' },
      { kind: 'read', item: 0, mode: 'refresh' },
    ],
  },
  // A hung load: a read past the join limit starts anew; nobody waits past the wait limit.
  {
    focus: [0],
    actions: [
      { kind: 'read', item: 0, mode: 'plain' },
      { kind: 'advance', ms: 8001 },
      { kind: 'read', item: 0, mode: 'plain' },
      { kind: 'answer', pick: 1, how: 'value' },
      { kind: 'advance', ms: 20_001 },
    ],
  },
  // SnapStart: a load from before the window lands after INVOKE; a read after INVOKE never joins it.
  {
    focus: [0],
    actions: [
      { kind: 'read', item: 0, mode: 'plain' },
      { kind: 'window' },
      { kind: 'read', item: 0, mode: 'plain' },
      { kind: 'invoke' },
      { kind: 'read', item: 0, mode: 'plain' },
      { kind: 'answer', pick: 0, how: 'value' },
      { kind: 'answer', pick: 0, how: 'value' },
      { kind: 'read', item: 0, mode: 'plain' },
    ],
  },
];

test('model: random reads, upstream changes, answer orders, clock and SnapStart events keep every guarantee', async (t) => {
  const seed = Number(process.env['PSCACHE_MODEL_SEED'] ?? Date.now() % 2_147_483_647);
  const numRuns = Number(process.env['PSCACHE_MODEL_RUNS'] ?? 1000);
  const note = `model seed ${seed}, ${numRuns} runs (PSCACHE_MODEL_SEED=${seed} to replay)`;
  t.diagnostic(note);
  console.log(note);
  const options: fc.Arbitrary<RunOptions> = fc.record({
    staleWait: fc.constantFrom(0, STALE_WAIT),
    marks: fc.constantFrom(2, 1000),
  });
  const details = await fc.check(
    fc.asyncProperty(
      fc.array(action, { minLength: 1, maxLength: 50 }),
      // Each run reads a few keys only, so that its reads, changes and answers meet on them; most runs one
      // object through several doors: both flags, a role, a label or version, and listings over them.
      fc.oneof(
        {
          weight: 3,
          arbitrary: fc.constantFrom<number[]>(
            [2, 3],
            [4, 5],
            [2, 3, 4],
            [2, 3, 5],
            [0, 6],
            [2, 7],
            [2, 8, 9],
            [3, 9],
          ),
        },
        { weight: 2, arbitrary: fc.uniqueArray(fc.nat(ITEMS.length - 1), { minLength: 1, maxLength: 3 }) },
      ),
      options,
      async (actions, focus, opts) => {
        await run(actions, focus, opts);
      },
    ),
    {
      seed,
      numRuns,
      examples: EXAMPLES.flatMap((e) => [
        [e.actions, e.focus, { staleWait: STALE_WAIT, marks: 1000 }],
        [e.actions, e.focus, { staleWait: 0, marks: 2 }],
      ]) as Array<[Action[], number[], RunOptions]>,
    },
  );
  if (details.failed) {
    const [actions, focus, opts] = details.counterexample!;
    const why = await run(actions, focus, opts).then(
      () => 'passed when replayed',
      (e: unknown) => (e instanceof Error ? e.message : String(e)),
    );
    throw new Error(
      `${note}: failed after ${details.numRuns} runs, shrunk ${details.numShrinks} times\n` +
        `counterexample: ${JSON.stringify(details.counterexample)}\n${why}`,
    );
  }
});
