// Model-based test of the cache core against a reference model written from the guarantees in
// docs/architecture.md, not from the code. fast-check draws random sequences of reads (plain, refreshNow,
// ttl=0, a short ttl, batch, path listing recursive or not; as the base credentials or a role; by name, by
// ARN, by version, label or versionStage), upstream changes (new values, deletion, restore, a parameter
// that changes type, denial to one role, a label moved), answers released in any order (values read when
// the load started or when it answered, as a retry would, NotFound/AccessDenied, throttling, 5xx, failed
// attempts, listing pages, a listing too large, a loader that throws at once, a load cut short when nobody
// waits), clock jumps past every internal lifetime, SnapStart events, and small caches, small mark tables
// and a service with caching off. For every answer the model knows what upstream held and when, and judges:
//
// - identity: the object, decryption flag (when its content depends on it), role and selector asked for;
// - floors: after a refreshNow or ttl=0 answer, or a NotFound/AccessDenied, no read that arrives later gets
//   what upstream held before it (unless it reads the same): for a String both flags, for every id the
//   object is known by (name, ARN), for a deletion every selector, and for the listings that show it;
// - freshness: a hit within the TTL of the load that stored it (a second if a ttl=1 read shared that load;
//   a refresh's hit within a second of its load's start), stale only within the stale window and only when
//   a load of that entry failed or retried around the read, or the read waited the stale wait; a miss from
//   a load that showed progress within the join limit;
// - liveness: every read answered within the wait limit; an error only from a load that failed (or a
//   timeout at the wait limit, or the loader's own fault thrown for that very read); never an abort;
// - caching: a plain read of a key whose newest load stored a value moments ago is a hit; a plain miss
//   while a joinable load of its key runs joins it; a read of an entry expired inside the stale window is
//   answered within the stale wait; refreshNow/ttl=0 loads of a key at most one a second, and a String's
//   answer shared by its other flag;
// - accounting and bounds: the hit, miss and stale counters match the answers; shares within the cache's
//   budget and never past their second, marks within their bound, no slot without a running load; nothing
//   left once every load settled.
//
// Reproduce a failure with PSCACHE_MODEL_SEED=<seed printed> (and PSCACHE_MODEL_RUNS for more runs), or
// replay one counterexample with PSCACHE_MODEL_REPLAY='<the counterexample printed>'.
import { test } from 'node:test';
import fc from 'fast-check';
import { AwsCallError } from '../src/aws/types.ts';
import { type Answer, ItemCache, REFRESH_SHARE_MS } from '../src/cache/index.ts';
import type { ItemRequest, Loaded, ParameterRequest, PathRequest } from '../src/items.ts';
import {
  type LoadContext,
  type Loader,
  type Outcome,
  type PathListing,
  PathTooLargeError,
} from '../src/loader/index.ts';
import { FakeClock, settle } from './helpers/fake-time.ts';

const TTL = 5000;
const STALE = 3000;
const WAIT = 20_000;
const JOIN = 8000;
const STALE_WAIT = 700;
const RETRY_PAUSE = 1000;
const ROLE = 'arn:aws:iam::123456789012:role/model';
const ACCOUNT = '123456789012';

type Obj = 'sa' | 'sb' | '/p' | '/s' | '/n/q';
const OBJECTS: readonly Obj[] = ['sa', 'sb', '/p', '/s', '/n/q'];
const isParam = (o: Obj) => o.startsWith('/');
type Role = '' | 'R';
type Sel = '' | 'L' | '1' | 'AWSCURRENT';
const arnOf = (o: Obj) =>
  isParam(o)
    ? `arn:aws:ssm:us-east-1:${ACCOUNT}:parameter${o}`
    : `arn:aws:secretsmanager:us-east-1:${ACCOUNT}:secret:${o}-AbCdEf`;
/** The ids an answer names its object by, as the loader reports them. */
const idsOf = (o: Obj) => (isParam(o) ? [o, arnOf(o)] : [o, arnOf(o), arnOf(o).slice(0, -7)]);

/** One readable key: an object, as a role, through an id, with a selector and a decryption flag. */
interface Item {
  obj: Obj;
  role: Role;
  sel: Sel;
  d: boolean;
  byArn: boolean;
  r: ItemRequest;
}

function item(obj: Obj, role: Role, sel: Sel, d: boolean, byArn = false): Item {
  const roleArn = role === 'R' ? { roleArn: ROLE } : {};
  const id = byArn ? arnOf(obj) : obj;
  const r: ItemRequest = isParam(obj)
    ? {
        service: 'ssm',
        name: id,
        withDecryption: d,
        ...(sel === 'L' ? { label: 'L' } : sel === '1' ? { version: '1' } : {}),
        ...roleArn,
      }
    : {
        service: 'secretsmanager',
        secretId: id,
        ...(sel === 'AWSCURRENT' ? { versionStage: sel } : {}),
        ...roleArn,
      };
  return { obj, role, sel, d: isParam(obj) && d, byArn, r };
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
  item('/p', '', '', false, true),
  item('sa', '', '', false, true),
  item('sa', '', 'AWSCURRENT', false),
  item('/n/q', '', '', false),
];
/** What a path listing of `/` shows, recursive or not. */
const PATH_OBJECTS: readonly Obj[] = ['/p', '/s', '/n/q'];
const inListing = (o: Obj, recursive: boolean) => recursive || !o.slice(1).includes('/');

/** The read key (what one read names). */
const readKeyOf = (i: Item) => `${i.role}|${i.byArn ? 'arn' : 'name'}|${i.obj}|${i.sel}|${i.d ? 1 : 0}`;
/** Reads of one group are one object to refreshNow floors: both flags, every id, one selector and role. */
const groupOf = (i: { role: Role; obj: Obj; sel: Sel }) => `${i.role}|${i.obj}|${i.sel}`;
const viewOf = (o: Obj, role: Role) => `${o}|${role}`;
const itemOf = (r: ItemRequest): Item => {
  const found = ITEMS.find((i) => sameRequest(i.r, r));
  if (!found) throw new Error(`no model item for ${JSON.stringify(r)}`);
  return found;
};
function sameRequest(a: ItemRequest, b: ItemRequest): boolean {
  if (a.service !== b.service || (a.roleArn ?? '') !== (b.roleArn ?? '')) return false;
  if (a.service === 'secretsmanager' && b.service === 'secretsmanager')
    return a.secretId === b.secretId && (a.versionStage ?? '') === (b.versionStage ?? '');
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

/** What a read of a view finds: a version (of a String, or a SecureString), or an error code. */
type Content = { v: number; secure: boolean } | { gone: string };
const sameContent = (a: Content, b: Content) =>
  'v' in a ? 'v' in b && a.v === b.v && a.secure === b.secure : 'gone' in b && a.gone === b.gone;

/**
 * What a body says: the object, version, selector, decryption flag (SecureString), role. Two loads of the
 * same content render the same bytes, as the real loader does; which load a body came from is known by
 * the Buffer's identity (the cache hands out the very Buffer it was given).
 */
interface Stamp {
  o: Obj;
  v: number;
  s: Sel;
  d?: boolean;
  r: Role;
}
interface PathStamp {
  path: true;
  d: boolean;
  rec: boolean;
  shows: Array<{ o: Obj; v: number }>;
}

type ReadMode = 'plain' | 'refresh' | 'ttl0' | 'ttl1s';

interface Captured {
  item: Item;
  content: Content;
  epoch: number;
}

interface ModelLoad {
  id: number;
  kind: 'one' | 'many' | 'path';
  event: number;
  startedAt: number;
  /** Every moment it showed progress: its start, each failed attempt, each page. */
  progress: number[];
  endedAt: number | undefined;
  endedEvent: number | undefined;
  /** What it read, per item: the content and the view's epoch when it read upstream. */
  items: Captured[];
  path: PathRequest | undefined;
  ctx: LoadContext | undefined;
  /** The read that started it (undefined: a refresh-ahead of a hit, or one started for several). */
  cause: Read | undefined;
  settled: boolean;
  outcome: 'value' | 'gone' | 'transient' | 'other' | undefined;
  /** Clock times at which an attempt failed (retry) or it failed transiently. */
  failures: number[];
  /** A ttl=1 read shared it (miss): it may have stored what it brought for a second only. */
  short: boolean;
  resolve(v: Loaded | Outcome[] | PathListing): void;
  reject(e: unknown): void;
}

interface Read {
  id: number;
  items: Item[];
  mode: ReadMode | 'many' | 'path';
  path: { d: boolean; rec: boolean } | undefined;
  event: number;
  arrivedAt: number;
  inWindow: boolean;
  answered: boolean;
}

type Action =
  | { kind: 'read'; item: number; mode: ReadMode }
  | { kind: 'many'; items: number[] }
  | { kind: 'path'; d: boolean; rec: boolean }
  | { kind: 'rotate' | 'delete' | 'restore' | 'relabel' | 'retype'; obj: number }
  | { kind: 'deny' | 'allow'; obj: number }
  | {
      kind: 'answer';
      pick: number;
      how: 'value' | 'late' | 'retry' | 'throttle' | '5xx' | 'page' | 'toolarge';
    }
  | { kind: 'throwNext' }
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
  {
    weight: 2,
    arbitrary: fc.record({ kind: fc.constant('path' as const), d: fc.boolean(), rec: fc.boolean() }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constantFrom(
        'rotate' as const,
        'rotate' as const,
        'delete' as const,
        'restore' as const,
        'relabel' as const,
        'retype' as const,
      ),
      obj: fc.nat(OBJECTS.length - 1),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constantFrom('deny' as const, 'allow' as const), obj: fc.nat(4) }),
  },
  {
    weight: 9,
    arbitrary: fc.record({
      kind: fc.constant('answer' as const),
      pick: fc.nat(),
      how: fc.constantFrom(
        'value' as const,
        'value' as const,
        'late' as const,
        'late' as const,
        'retry' as const,
        'throttle' as const,
        '5xx' as const,
        'page' as const,
        'toolarge' as const,
      ),
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({ kind: fc.constant('advance' as const), ms: fc.constantFrom(...STEPS) }),
  },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      { kind: 'window' as const },
      { kind: 'invoke' as const },
      { kind: 'throwNext' as const },
    ),
  },
);

interface RunOptions {
  /** The stale wait of the cache under test (0: reads with a stale value wait for the load). */
  staleWait: number;
  /** Marks kept at once: small runs drop marks for room and raise the floor. */
  marks: number;
  /** A small cache (3 items, 400 bytes) evicts; a large one never does. */
  small: boolean;
  /** SSM's TTL 0: parameters are never cached, secrets are. */
  ssmOff: boolean;
}

async function run(actions: Action[], focus: number[], opts: RunOptions): Promise<void> {
  const clock = new FakeClock();
  let event = 0;
  const failures: string[] = [];
  const fail = (what: string): void => {
    failures.push(what);
  };

  // ---- upstream -------------------------------------------------------------------------------------
  const world = new Map<Obj, { v: number } | { gone: true }>(OBJECTS.map((o) => [o, { v: 1 }]));
  const secure = new Map<Obj, boolean>(OBJECTS.map((o) => [o, o === '/s']));
  /** The newest version each object ever had (a restore is a newer version). */
  const versions = new Map<Obj, number>(OBJECTS.map((o) => [o, 1]));
  let labelAt = 1;
  const denied = new Set<Obj>();
  const epochs = new Map<string, number>();
  const epochOf = (o: Obj, role: Role) => epochs.get(viewOf(o, role)) ?? 0;
  const bump = (o: Obj, roles: Role[] = ['', 'R']) => {
    for (const role of roles) epochs.set(viewOf(o, role), epochOf(o, role) + 1);
  };
  const notFoundCode = (i: Item) => (isParam(i.obj) ? 'ParameterNotFound' : 'ResourceNotFoundException');
  /** What upstream answers a read of `i` now. */
  const contentOf = (i: Item): Content => {
    if (i.role === 'R' && denied.has(i.obj)) return { gone: 'AccessDeniedException' };
    const s = world.get(i.obj)!;
    if ('gone' in s) return { gone: notFoundCode(i) };
    const sec = secure.get(i.obj)!;
    if (i.sel === '1') return { v: 1, secure: sec };
    if (i.sel === 'L') return { v: Math.min(labelAt, s.v), secure: sec };
    return { v: s.v, secure: sec };
  };
  const capture = (i: Item): Captured => ({ item: i, content: contentOf(i), epoch: epochOf(i.obj, i.role) });

  // ---- the loader: every load waits for the model to answer it ---------------------------------------
  const loads: ModelLoad[] = [];
  let cause: Read | undefined;
  let throwNext = false;
  /** Faults the loader threw at once, with the read being made when it did. */
  const thrown = new WeakMap<object, Read | undefined>();
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
    const covered = path
      ? PATH_OBJECTS.filter((o) => inListing(o, path.recursive)).map((o) =>
          item(o, '', '', path.withDecryption),
        )
      : its;
    let settle: { resolve(v: unknown): void; reject(e: unknown): void } = { resolve() {}, reject() {} };
    const settleWith = (how: 'resolve' | 'reject', v: unknown) => {
      if (l.settled) return;
      l.settled = true;
      l.endedAt = clock.now();
      l.endedEvent = ++event;
      if (how === 'resolve') settle.resolve(v);
      else settle.reject(v);
    };
    const l: ModelLoad = {
      id: loads.length,
      kind,
      event: ++event,
      startedAt: clock.now(),
      progress: [clock.now()],
      endedAt: undefined,
      endedEvent: undefined,
      items: covered.map(capture),
      path,
      ctx,
      cause,
      settled: false,
      outcome: undefined,
      failures: [],
      short: false,
      resolve: (v) => settleWith('resolve', v),
      reject: (e) => settleWith('reject', e),
    };
    loads.push(l);
    if (throwNext) {
      // A fault of the loader's own, thrown at once: a load that started and ended on the spot.
      throwNext = false;
      l.outcome = 'other';
      settleWith('reject', undefined);
      const e = new TypeError('a fault of the loader');
      thrown.set(e, cause);
      throw e;
    }
    // As the AWS client does: a load cut short (nobody waits for it) fails at once as Abandoned.
    ctx?.signal?.addEventListener('abort', () => {
      const e = new AwsCallError('Abandoned', 'nobody waits for this answer any more', 'network');
      errorLoad.set(e, l);
      l.outcome = 'other';
      l.reject(e);
    });
    return new Promise((resolve, reject) => {
      settle = { resolve, reject };
    });
  }
  /** Which load each body the loader handed out came from. */
  const madeBy = new WeakMap<Buffer, ModelLoad>();
  /** Bodies a ttl=1 read was answered with as it loaded them: they may live a second only. */
  const shortBodies = new WeakSet<Buffer>();
  const bodyFor = (i: Item, c: { v: number; secure: boolean }, l: ModelLoad): Loaded => {
    const stamp: Stamp = { o: i.obj, v: c.v, s: i.sel, r: i.role, ...(c.secure ? { d: i.d } : {}) };
    const body = Buffer.from(JSON.stringify(stamp));
    madeBy.set(body, l);
    return isParam(i.obj) && !c.secure
      ? { body, plain: true, ids: idsOf(i.obj) }
      : { body, ids: idsOf(i.obj) };
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

  const maxItems = opts.small ? 3 : 100;
  const maxBytes = opts.small ? 400 : 1 << 20;
  const cache = new ItemCache({
    enabled: true,
    maxItems,
    maxBytes,
    ttlMs: { ssm: opts.ssmOff ? 0 : TTL, secretsmanager: TTL },
    staleIfErrorMs: STALE,
    staleWaitMs: opts.staleWait,
    loader,
    waitLimitMs: { ssm: WAIT, secretsmanager: WAIT },
    joinLimitMs: { ssm: JOIN, secretsmanager: JOIN },
    markBounds: { maxItems: opts.marks, maxBytes: 1 << 20 },
    clock,
    jitter: () => 1,
  });
  const cachedService = (i: Item) => !(opts.ssmOff && isParam(i.obj));

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

  /** Whether `l` could answer `i`: it read `i`'s group, with `i`'s flag unless the content is a String's. */
  const covers = (l: ModelLoad, i: Item, x?: Captured) =>
    (x ? [x] : l.items).some(
      (y) =>
        groupOf(y.item) === groupOf(i) &&
        (y.item.d === i.d || ('v' in y.content && !y.content.secure) || !isParam(i.obj)),
    );

  /** Whether a stale answer to a read of `i` between `arrived` and `answered` is justified. */
  const staleJustified = (i: Item | undefined, read: Read, answered: number) => {
    const arrived = read.arrivedAt;
    if (answered - arrived >= WAIT) return true;
    if (opts.staleWait > 0 && answered - arrived >= opts.staleWait) return true;
    // A failure of a load whose back-off or retry reaches the entry this read found: an item load of the
    // same key or (a String's shared entry) the other flag, or for a listing, a load of that listing.
    const related = loads.filter((l) =>
      i === undefined
        ? l.kind === 'path' && l.path!.withDecryption === read.path!.d && l.path!.recursive === read.path!.rec
        : l.kind !== 'path' && covers(l, i),
    );
    return related.some((l) =>
      l.failures.some(
        (t) =>
          (t >= arrived - RETRY_PAUSE && t <= answered) ||
          // A load that failed an attempt and still ran when the read came.
          (t <= arrived && (l.endedAt === undefined || l.endedAt >= arrived)),
      ),
    );
  };

  /** The keys a refresh answer of `i` is a floor for: its group's keys (both flags for a String). */
  const floorKeys = (i: Item, c: Content): string[] => {
    const plain = 'v' in c && !c.secure;
    const keys = ITEMS.filter((j) => groupOf(j) === groupOf(i) && (plain || j.d === i.d)).map(readKeyOf);
    if (i.role === '' && i.sel === '' && PATH_OBJECTS.includes(i.obj)) {
      for (const d of [false, true]) if (plain || d === i.d) keys.push(pathFloorKey(d, i.obj));
    }
    return keys;
  };
  /** A NotFound/AccessDenied answer: a floor for the object's keys (every selector, if it named none). */
  const gone = (i: Item, epoch: number, content: Content) => {
    for (const j of ITEMS) {
      if (j.obj !== i.obj || j.role !== i.role) continue;
      if (i.sel !== '' && j.sel !== i.sel) continue;
      raiseFloor(readKeyOf(j), epoch, content);
    }
    if (i.role === '' && (i.sel === '' || !isParam(i.obj)) && PATH_OBJECTS.includes(i.obj)) {
      for (const d of [false, true]) raiseFloor(pathFloorKey(d, i.obj), epoch, content);
    }
  };

  function checkItem(read: Read, i: Item, a: Answer | undefined, error: unknown, sync: boolean): void {
    const now = clock.now();
    const waited = now - read.arrivedAt;
    const what = readKeyOf(i);
    if (waited > WAIT) fail(`read ${read.id} of ${what} waited ${waited} ms`);
    if (a === undefined) {
      if (sync) counted.hits++;
      else counted.misses++;
      if (error instanceof TypeError && thrown.has(error)) {
        if (thrown.get(error) !== read) fail(`read ${read.id} of ${what} got another read's loader fault`);
        return;
      }
      if (!(error instanceof AwsCallError)) {
        fail(`read ${read.id} of ${what} failed with a non-upstream error: ${String(error)}`);
        return;
      }
      if (error.code === 'Abandoned') {
        fail(`read ${read.id} of ${what} got the abort of a load cut short`);
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
      if (error.kind === 'aws') {
        // A NotFound holds for the object: any id, either flag, and without a selector every selector.
        const x = l.items.find(
          (y) =>
            y.item.obj === i.obj && y.item.role === i.role && (y.item.sel === i.sel || y.item.sel === ''),
        );
        if (!x) {
          fail(`read ${read.id} of ${what}: ${error.code} from a load of something else`);
          return;
        }
        checkFloor(read, what, x.epoch, x.content, what);
        if (!read.inWindow && cachedService(i)) gone(x.item, x.epoch, x.content);
      } else if (!covers(l, i)) {
        fail(`read ${read.id} of ${what}: ${error.code} from a load of something else`);
      }
      return;
    }
    if (a.source === 'hit') counted.hits++;
    else if (a.source === 'stale') counted.stale++;
    else counted.misses++;
    const stamp = JSON.parse(a.body.toString()) as Stamp;
    const l = madeBy.get(a.body);
    if (l === undefined) {
      fail(`read ${read.id} of ${what}: a body no load handed out`);
      return;
    }
    // Identity: the object, role, selector and (when the content depends on it) decryption flag.
    if (stamp.o !== i.obj || stamp.r !== i.role || stamp.s !== i.sel) {
      fail(`read ${read.id} of ${what} got ${JSON.stringify(stamp)}`);
      return;
    }
    if (stamp.d !== undefined && stamp.d !== i.d) {
      fail(`read ${read.id} of ${what}: the other flag's answer`);
      return;
    }
    const x = l.items.find(
      (y) => groupOf(y.item) === groupOf(i) && 'v' in y.content && y.content.v === stamp.v && covers(l, i, y),
    );
    if (!x) {
      fail(`read ${read.id} of ${what}: answered from load ${l.id}, which read no such thing`);
      return;
    }
    const content = x.content;
    checkFloor(read, what, x.epoch, content, what);
    // SnapStart: nothing from before the first INVOKE; inside the window, only a fresh load with new credentials.
    if (read.event > clearedAt && l.event < clearedAt)
      fail(`read ${read.id} of ${what}: a value from before INVOKE`);
    if (
      read.inWindow &&
      (a.source !== 'miss' || l.event < read.event || l.ctx?.credentialsSince === undefined)
    )
      fail(`read ${read.id} of ${what} in the SnapStart window was not loaded afresh`);
    if (!cachedService(i) && (a.source !== 'miss' || l.event < read.event))
      fail(`read ${read.id} of ${what}: caching is off for it, yet ${a.source} from load ${l.id}`);
    if (a.source === 'hit') {
      if (!sync) fail(`read ${read.id} of ${what}: a hit that waited`);
      if (read.mode === 'refresh' || read.mode === 'ttl0') {
        if (read.arrivedAt - l.startedAt >= REFRESH_SHARE_MS)
          fail(
            `read ${read.id} of ${what} (${read.mode}): shared a load ${read.arrivedAt - l.startedAt} ms old`,
          );
      } else {
        const life = read.mode === 'ttl1s' || shortBodies.has(a.body) ? 1000 : TTL;
        if (l.endedAt === undefined || read.arrivedAt >= l.endedAt + life)
          fail(
            `read ${read.id} of ${what}: a hit ${read.arrivedAt - (l.endedAt ?? 0)} ms after its load, TTL ${life}`,
          );
      }
    } else if (a.source === 'stale') {
      if (read.mode === 'refresh' || read.mode === 'ttl0')
        fail(`read ${read.id} of ${what} (${read.mode}) got a stale value`);
      if (
        l.endedAt === undefined ||
        read.arrivedAt > l.endedAt + (shortBodies.has(a.body) ? 1000 : TTL) + STALE
      )
        fail(`read ${read.id} of ${what}: stale past the stale window`);
      if (!staleJustified(i, read, now))
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
      if (read.mode === 'ttl1s') {
        l.short = true;
        shortBodies.add(a.body);
      }
    }
    if ((read.mode === 'refresh' || read.mode === 'ttl0') && !read.inWindow && cachedService(i)) {
      for (const k of floorKeys(i, content)) raiseFloor(k, x.epoch, content);
    }
  }

  function checkPath(read: Read, a: Answer | undefined, error: unknown, sync: boolean): void {
    const waited = clock.now() - read.arrivedAt;
    if (waited > WAIT) fail(`path read ${read.id} waited ${waited} ms`);
    if (a === undefined) {
      if (sync) counted.hits++;
      else counted.misses++;
      if (error instanceof TypeError && thrown.has(error)) {
        if (thrown.get(error) !== read) fail(`path read ${read.id} got another read's loader fault`);
        return;
      }
      if (error instanceof PathTooLargeError) return;
      if (!(error instanceof AwsCallError) || error.code === 'Abandoned') {
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
    const l = madeBy.get(a.body);
    if (l === undefined) {
      fail(`path read ${read.id}: a body no load handed out`);
      return;
    }
    if (stamp.d !== read.path!.d || stamp.rec !== read.path!.rec)
      fail(`path read ${read.id}: another listing`);
    if (read.event > clearedAt && l.event < clearedAt)
      fail(`path read ${read.id}: a listing from before INVOKE`);
    for (const x of l.items) {
      const shown = stamp.shows.find((s) => s.o === x.item.obj);
      const content: Content = shown
        ? { v: shown.v, secure: 'v' in x.content && x.content.secure }
        : { gone: 'absent' };
      const f = floors.get(pathFloorKey(read.path!.d, x.item.obj));
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
    if (a.source === 'stale') {
      if (l.endedAt === undefined || read.arrivedAt > l.endedAt + TTL + STALE)
        fail(`path read ${read.id}: stale past the stale window`);
      if (!staleJustified(undefined, read, clock.now()))
        fail(`path read ${read.id}: stale with no failure of its load`);
    }
  }

  /**
   * Caching and joining, judged when a plain read arrives: a key whose newest load stored a value within
   * the first 90% of its TTL, with nothing of its object started or landed since, must answer a hit; a key
   * whose load runs, showed progress within the join limit and has nothing newer of its object, must be
   * joined, not loaded again. (Small caches evict, small mark tables refetch on purpose: not judged.)
   */
  function expectations(
    read: Read,
    i: Item,
  ): { mustHit?: ModelLoad; mustJoin?: ModelLoad; answerBy?: number } {
    if (read.mode !== 'plain' || windowOpen || opts.marks < 1000 || opts.small || !cachedService(i))
      return {};
    const t = read.arrivedAt;
    const objectLoads = loads.filter((l) => l.items.some((x) => x.item.obj === i.obj));
    const newerStarted = (l: ModelLoad) => objectLoads.some((o) => o !== l && o.event > l.event);
    const landedAfter = (ev: number) =>
      objectLoads.some((o) => o.endedEvent !== undefined && o.endedEvent > ev);
    // A refreshNow or ttl=0 answer without a selector is a floor for every id of its object (docs/architecture.md):
    // a load of another key of the object (a selector, the other id) that started before it landed is
    // judged against that news at its own key only, and is not kept when nothing there agrees. Not kept is
    // allowed (the next read loads again); a wrong value never is, and the floors judge that.
    // More generally, a load is kept only if it agrees with whatever of its object landed while it ran (an
    // older load answering later with another value: neither is trusted); the model does not follow
    // agreement at that grain, so it expects no hit after such a load (seed 1376437292, run 97 406).
    const refreshLandedDuring = (l: ModelLoad) =>
      objectLoads.some(
        (o) =>
          o !== l && o.endedEvent !== undefined && o.endedEvent > l.event && o.endedEvent < l.endedEvent!,
      );
    const shortened = (l: ModelLoad) =>
      l.short ||
      reads.some((r) => r.mode === 'ttl1s' && r.items.some((j) => j.obj === i.obj) && r.event > l.event);
    const mustHit = loads.find(
      (l) =>
        l.outcome === 'value' &&
        l.kind !== 'path' &&
        l.endedEvent !== undefined &&
        l.event > clearedAt &&
        t < l.endedAt! + TTL * 0.9 &&
        l.items.some((x) => readKeyOf(x.item) === readKeyOf(i) && 'v' in x.content) &&
        (l.cause === undefined || l.cause.mode === 'plain' || l.cause.mode === 'many') &&
        !shortened(l) &&
        !newerStarted(l) &&
        !refreshLandedDuring(l) &&
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
    // Stale first: a key whose entry expired inside the stale window, with nothing landed for its object
    // since it was stored, answers within the stale wait whatever upstream does.
    const staleBy =
      opts.staleWait > 0 &&
      loads.some(
        (l) =>
          l.outcome === 'value' &&
          l.kind !== 'path' &&
          l.endedEvent !== undefined &&
          l.event > clearedAt &&
          l.items.some((x) => readKeyOf(x.item) === readKeyOf(i) && 'v' in x.content) &&
          (l.cause === undefined || l.cause.mode === 'plain' || l.cause.mode === 'many') &&
          !shortened(l) &&
          !refreshLandedDuring(l) &&
          t >= l.endedAt! + TTL &&
          t <= l.endedAt! + TTL + STALE &&
          !landedAfter(l.endedEvent),
      );
    return {
      ...(mustHit ? { mustHit } : {}),
      ...(mustJoin ? { mustJoin } : {}),
      ...(staleBy ? { answerBy: t + opts.staleWait } : {}),
    };
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

  /** Bounds that hold between any two steps. */
  const checkBounds = (step: string) => {
    const o = cache.overhead;
    if (o.shares > maxItems || o.shareBytes > maxBytes)
      fail(`${step}: shares ${o.shares} items, ${o.shareBytes} bytes`);
    if (o.marks > Math.max(opts.marks, 0)) fail(`${step}: ${o.marks} marks, bound ${opts.marks}`);
    // A batch load runs for each of its items' keys.
    const running = loads
      .filter((l) => !l.settled)
      .reduce((n, l) => n + (l.kind === 'many' ? l.items.length : 1), 0);
    if (o.slots > running) fail(`${step}: ${o.slots} load slots for ${running} keys loading`);
  };

  const pick = (n: number) => ITEMS[focus[n % focus.length]!]!;
  const objAt = (n: number) => pick(n).obj;
  const newRead = (items: Item[], mode: Read['mode'], path?: { d: boolean; rec: boolean }): Read => ({
    id: reads.length,
    items,
    mode,
    path,
    event: ++event,
    arrivedAt: clock.now(),
    inWindow: windowOpen,
    answered: false,
  });

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
        const read = newRead([i], act.mode);
        const expect = expectations(read, i);
        cause = read;
        const p = answerOf(() => cache.get(i.r, o));
        cause = undefined;
        if (expect.mustJoin && loads.some((l) => l.cause === read))
          fail(`read ${read.id} of ${readKeyOf(i)} started a load although load ${expect.mustJoin.id} runs`);
        track(
          read,
          p.then((x) => {
            if (expect.answerBy !== undefined && clock.now() > expect.answerBy)
              fail(
                `read ${read.id} of ${readKeyOf(i)} held a stale value, yet waited ${clock.now() - read.arrivedAt} ms`,
              );
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
        const read = newRead(its, 'many');
        cause = read;
        let p: Promise<Array<{ a?: Answer; e?: unknown; sync: boolean }>>;
        try {
          p = cache
            .getMany(its.map((i) => i.r))
            .then((xs) =>
              xs.map((x) =>
                x.ok ? { a: x.answer, sync: x.answer.source === 'hit' } : { e: x.error, sync: false },
              ),
            );
        } catch (e) {
          fail(`getMany threw at once: ${String(e)}`);
          p = Promise.resolve([]);
        }
        cause = undefined;
        track(read, p);
        break;
      }
      case 'path': {
        const read = newRead([], 'path', { d: act.d, rec: act.rec });
        cause = read;
        const p = answerOf(() => cache.getPath({ path: '/', recursive: act.rec, withDecryption: act.d }));
        cause = undefined;
        track(
          read,
          p.then((x) => [x]),
        );
        break;
      }
      case 'rotate':
      case 'restore': {
        const o = objAt(act.obj);
        const s = world.get(o)!;
        if ((act.kind === 'rotate') === 'v' in s) {
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
          world.set(o, { gone: true });
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
      case 'retype': {
        // A parameter deleted and put again as the other type: a new version of it.
        const o = objAt(act.obj);
        if (isParam(o) && 'v' in world.get(o)!) {
          secure.set(o, !secure.get(o));
          const v = versions.get(o)! + 1;
          versions.set(o, v);
          world.set(o, { v });
          bump(o);
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
      case 'throwNext':
        throwNext = true;
        break;
      case 'answer': {
        const open = loads.filter((l) => !l.settled);
        if (open.length === 0) break;
        const l = open[act.pick % open.length]!;
        event++;
        if (act.how === 'retry') {
          l.failures.push(clock.now());
          l.progress.push(clock.now());
          l.ctx?.onRetry?.(new AwsCallError('InternalFailure', 'attempt failed', 'server', 500));
          break;
        }
        if (act.how === 'page') {
          if (l.kind === 'path') {
            l.progress.push(clock.now());
            l.ctx?.onProgress?.();
          }
          break;
        }
        if (act.how === 'throttle' || act.how === '5xx') {
          l.failures.push(clock.now());
          l.outcome = 'transient';
          l.reject(transient(l, act.how));
          break;
        }
        if (act.how === 'toolarge' && l.kind === 'path') {
          l.outcome = 'other';
          l.reject(new PathTooLargeError('/', l.path!.recursive));
          break;
        }
        // A retry that read upstream only now: what it answers is today's content.
        if (act.how === 'late') {
          l.items = l.items.map((x) => capture(x.item));
          l.progress.push(clock.now());
        }
        if (l.kind === 'one') {
          const [x] = l.items;
          const e = goneError(x!.content, l);
          l.outcome = e ? 'gone' : 'value';
          if (e) l.reject(e);
          else l.resolve(bodyFor(x!.item, x!.content as { v: number; secure: boolean }, l));
        } else if (l.kind === 'many') {
          l.outcome = 'value';
          l.resolve(
            l.items.map((x): Outcome => {
              const e = goneError(x.content, l);
              return e
                ? { ok: false, error: e }
                : { ok: true, loaded: bodyFor(x.item, x.content as { v: number; secure: boolean }, l) };
            }),
          );
        } else {
          l.outcome = 'value';
          const present = l.items.filter((x) => 'v' in x.content);
          const stamp: PathStamp = {
            path: true,
            d: l.path!.withDecryption,
            rec: l.path!.recursive,
            shows: present.map((x) => ({ o: x.item.obj, v: (x.content as { v: number }).v })),
          };
          const listingBody = Buffer.from(JSON.stringify(stamp));
          madeBy.set(listingBody, l);
          l.resolve({
            body: listingBody,
            items: present.map((x) => ({
              request: x.item.r as ParameterRequest,
              loaded: bodyFor(x.item, x.content as { v: number; secure: boolean }, l),
            })),
          });
        }
        break;
      }
      case 'advance':
        await clock.advance(act.ms);
        if (cache.overhead.shareAgeMs >= REFRESH_SHARE_MS)
          fail(`a share ${cache.overhead.shareAgeMs} ms old is still held after the clock moved`);
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
    checkBounds(act.kind);
  }
  // Nothing waits forever: past every deadline, every read has its answer (hung loads included).
  await clock.advance(WAIT + JOIN + 1);
  await settle();
  for (const r of reads) if (!r.answered) fail(`read ${r.id} (${r.mode}) never answered`);
  // Every load was started by a read: at most one per item read (and one refresh-ahead per hit).
  const itemReads = reads.reduce((n, r) => n + Math.max(1, r.items.length), 0);
  if (loads.length > itemReads) fail(`${loads.length} loads for ${itemReads} item reads`);
  // refreshNow and ttl=0 reads of one key start at most one load a second, and a String's refresh answer
  // is shared by its other flag, unless something else of the object started or landed in between, or
  // INVOKE started afresh. (Small mark tables and caches refetch on purpose: not judged.)
  const judged = opts.marks >= 1000 && !opts.small;
  for (const [a, l] of judged ? loads.entries() : []) {
    const c = l.cause;
    if (!c || (c.mode !== 'refresh' && c.mode !== 'ttl0') || c.inWindow || !cachedService(c.items[0]!))
      continue;
    const i = c.items[0]!;
    for (const prev of loads.slice(0, a)) {
      const pc = prev.cause;
      if (!pc || (pc.mode !== 'refresh' && pc.mode !== 'ttl0') || pc.inWindow) continue;
      const pi = pc.items[0]!;
      if (groupOf(pi) !== groupOf(i) || pi.byArn !== i.byArn) continue;
      const sameKey = readKeyOf(pi) === readKeyOf(i);
      // The other flag shares only an answer that landed and said the parameter reads the same either way.
      const plainAnswer =
        prev.outcome === 'value' && prev.items.some((x) => 'v' in x.content && !x.content.secure);
      if (!sameKey && !(plainAnswer && prev.endedEvent !== undefined && prev.endedEvent < l.event)) continue;
      if (
        l.startedAt - prev.startedAt >= REFRESH_SHARE_MS ||
        prev.outcome === 'transient' ||
        prev.outcome === 'other'
      )
        continue;
      if (prev.event < clearedAt && clearedAt < l.event) continue;
      const between = loads.some(
        (o) =>
          o !== prev &&
          o !== l &&
          o.items.some((x) => x.item.obj === i.obj) &&
          ((o.event > prev.event && o.event < l.event) ||
            (o.endedEvent !== undefined && o.endedEvent > prev.event && o.endedEvent < l.event)),
      );
      if (!between && prev.settled && prev.endedEvent! < l.event)
        fail(`${readKeyOf(i)}: a refresh load ${l.startedAt - prev.startedAt} ms after load ${prev.id}`);
    }
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
  await clock.advance(REFRESH_SHARE_MS);
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
      { kind: 'path', d: false, rec: true },
      { kind: 'delete', obj: 0 },
      { kind: 'read', item: 0, mode: 'plain' },
      { kind: 'answer', pick: 1, how: 'value' },
      { kind: 'read', item: 1, mode: 'plain' },
      { kind: 'read', item: 2, mode: 'plain' },
      { kind: 'answer', pick: 1, how: 'value' },
      { kind: 'answer', pick: 1, how: 'value' },
      { kind: 'answer', pick: 0, how: 'value' },
      { kind: 'read', item: 0, mode: 'plain' },
      { kind: 'path', d: false, rec: true },
    ],
  },
  // 3. A listing slower than the join limit, read every few seconds, is joined and cached.
  {
    focus: [2],
    actions: [
      { kind: 'path', d: false, rec: true },
      { kind: 'advance', ms: 4499 },
      { kind: 'answer', pick: 0, how: 'page' },
      { kind: 'path', d: false, rec: true },
      { kind: 'advance', ms: 4499 },
      { kind: 'answer', pick: 0, how: 'page' },
      { kind: 'path', d: false, rec: true },
      { kind: 'advance', ms: 4499 },
      { kind: 'answer', pick: 0, how: 'value' },
      { kind: 'path', d: false, rec: true },
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
      { kind: 'answer', pick: 0, how: 'late' },
      { kind: 'read', item: 0, mode: 'plain' },
    ],
  },
  // 6c. A listing keeps showing what a refreshNow found gone.
  {
    focus: [2],
    actions: [
      { kind: 'path', d: false, rec: true },
      { kind: 'answer', pick: 0, how: 'value' },
      { kind: 'delete', obj: 0 },
      { kind: 'read', item: 0, mode: 'refresh' },
      { kind: 'answer', pick: 0, how: 'value' },
      { kind: 'path', d: false, rec: true },
      { kind: 'advance', ms: 5001 },
      { kind: 'path', d: false, rec: true },
      { kind: 'answer', pick: 0, how: '5xx' },
      { kind: 'path', d: false, rec: true },
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
  // Review, G1: a load of the other flag that started before a refresh answered, with older data.
  {
    focus: [2, 3],
    actions: [
      { kind: 'read', item: 0, mode: 'refresh' },
      { kind: 'answer', pick: 0, how: 'retry' },
      { kind: 'read', item: 1, mode: 'plain' },
      { kind: 'rotate', obj: 0 },
      { kind: 'answer', pick: 0, how: 'late' },
      { kind: 'answer', pick: 0, how: 'value' },
      { kind: 'read', item: 1, mode: 'plain' },
      { kind: 'read', item: 0, mode: 'plain' },
    ],
  },
  // Review, G2: NotFound by name, then an older read by ARN and a versionStage read.
  {
    focus: [0, 11, 12],
    actions: [
      { kind: 'read', item: 1, mode: 'plain' },
      { kind: 'read', item: 2, mode: 'plain' },
      { kind: 'answer', pick: 0, how: 'value' },
      { kind: 'delete', obj: 0 },
      { kind: 'read', item: 0, mode: 'refresh' },
      { kind: 'answer', pick: 1, how: 'value' },
      { kind: 'answer', pick: 0, how: 'value' },
      { kind: 'read', item: 1, mode: 'plain' },
      { kind: 'read', item: 2, mode: 'plain' },
    ],
  },
  // Review, type change: a SecureString becomes a String (and back).
  {
    focus: [2, 3],
    actions: [
      { kind: 'retype', obj: 0 },
      { kind: 'read', item: 0, mode: 'plain' },
      { kind: 'read', item: 1, mode: 'plain' },
      { kind: 'answer', pick: 0, how: 'value' },
      { kind: 'answer', pick: 0, how: 'value' },
      { kind: 'retype', obj: 0 },
      { kind: 'read', item: 1, mode: 'refresh' },
      { kind: 'answer', pick: 0, how: 'value' },
      { kind: 'read', item: 0, mode: 'plain' },
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
  // Seed 1376034302 (72 484th run): a ttl=0 answer by name is shared for its second; the object is found
  // gone by ARN; a refreshNow by name in that second must not answer the share's older value.
  {
    focus: [0, 11, 12],
    actions: [
      { kind: 'read', item: 0, mode: 'ttl0' },
      { kind: 'answer', pick: 0, how: 'value' },
      { kind: 'delete', obj: 0 },
      { kind: 'read', item: 4, mode: 'plain' },
      { kind: 'answer', pick: 0, how: 'value' },
      { kind: 'read', item: 0, mode: 'refresh' },
    ],
  },
  // Seed 1376437292 (31 497th run): two refreshes of /p, one per flag, land one after the other with no load
  // started in between; the first's share (a String, v1) must not answer a ttl=0 read after the second's
  // news (a SecureString, v2): each landing has a number of its own.
  {
    focus: [2, 3],
    actions: [
      { kind: 'read', item: 1, mode: 'refresh' },
      { kind: 'read', item: 0, mode: 'refresh' },
      { kind: 'answer', pick: 0, how: 'value' },
      { kind: 'retype', obj: 0 },
      { kind: 'answer', pick: 0, how: 'late' },
      { kind: 'read', item: 0, mode: 'ttl0' },
    ],
  },
  // Seed 1374830685 (53 467th run): the same for a batch read of /p by its ARN beside a refreshNow of /p
  // by name: not kept, so after the TTL there is no stale value to answer with within the stale wait.
  {
    focus: [2, 3, 10],
    actions: [
      { kind: 'read', item: 0, mode: 'refresh' },
      { kind: 'many', items: [8, 0] },
      { kind: 'answer', pick: 0, how: 'value' },
      { kind: 'answer', pick: 0, how: 'value' },
      { kind: 'advance', ms: 7999 },
      { kind: 'read', item: 8, mode: 'plain' },
    ],
  },
  // Seed 1374552908 (Node 24, 715th run): a refreshNow of secret sa lands while a batch read of sa's
  // AWSCURRENT runs; that batch's answer is judged against the refresh's floor at its own key, where nothing
  // agrees, and is not kept: the next read of AWSCURRENT is a miss, not a hit (allowed; never a wrong value).
  {
    focus: [0, 11, 12],
    actions: [
      { kind: 'read', item: 0, mode: 'refresh' },
      { kind: 'many', items: [11] },
      { kind: 'answer', pick: 0, how: 'value' },
      { kind: 'answer', pick: 0, how: 'value' },
      { kind: 'read', item: 8, mode: 'plain' },
      { kind: 'answer', pick: 0, how: 'value' },
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
    marks: fc.constantFrom(3, 1000, 1000, 1000),
    small: fc.constantFrom(false, false, false, true),
    ssmOff: fc.constantFrom(false, false, false, false, false, true),
  });
  const replay = process.env['PSCACHE_MODEL_REPLAY'];
  if (replay !== undefined) {
    const [actions, focus, opts] = JSON.parse(replay) as [Action[], number[], RunOptions];
    await run(actions, focus, opts);
    return;
  }
  const details = await fc.check(
    fc.asyncProperty(
      fc.array(action, { minLength: 1, maxLength: 50 }),
      // Each run reads a few keys only, so that its reads, changes and answers meet on them; most runs one
      // object through several doors: both flags, a role, an ARN, a label, version or versionStage, and
      // listings over them.
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
            [2, 3, 10],
            [0, 11, 12],
            [2, 13],
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
        [e.actions, e.focus, { staleWait: STALE_WAIT, marks: 1000, small: false, ssmOff: false }],
        [e.actions, e.focus, { staleWait: 0, marks: 3, small: false, ssmOff: false }],
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
