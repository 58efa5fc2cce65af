// The in-process harness of the cache's tests: an ItemCache on a FakeClock over a ScriptedLoader (whose loads
// the test answers in the order it chooses), the requests and answers the tests use, and reads started,
// looked at and answered on the test's terms. No real timers: every verdict is the test's order.
import assert from 'node:assert/strict';
import { AwsCallError } from '../../src/aws/types.ts';
import { type Answer, type CacheOptions, ItemCache } from '../../src/cache/index.ts';
import type { ItemRequest, Loaded, ParameterRequest } from '../../src/items.ts';
import type { PathListing } from '../../src/loader/index.ts';
import { FakeClock, ScriptedLoader, settle } from './fake-time.ts';

export const TTL = 10_000;
export const WAIT = 30_000;
export const STALE = 60_000;
/** A parameter ARN's prefix: `${ARN}${name}`. */
export const ARN = 'arn:aws:ssm:eu-west-1:123456789012:parameter';

/** A cache with both services' TTL, wait limit and stale window fixed, jitter off, on a fake clock. */
export function setupCache(o: Partial<CacheOptions> = {}, loader: ScriptedLoader = new ScriptedLoader()) {
  const clock = new FakeClock();
  const background: Array<{ e: unknown; name: string }> = [];
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
    onBackgroundError: (e, name) => background.push({ e, name }),
    ...o,
  });
  return { clock, loader, cache, background };
}
export type CacheSetup = ReturnType<typeof setupCache>;

export const secret = (id: string, more: Partial<Extract<ItemRequest, { service: 'secretsmanager' }>> = {}) =>
  ({ service: 'secretsmanager', secretId: id, ...more }) as ItemRequest;
export const param = (
  name: string,
  withDecryption = false,
  more: Partial<ParameterRequest> = {},
): ParameterRequest => ({ service: 'ssm', name, withDecryption, ...more });
/** A String parameter's answer: the same with and without decryption. */
export const plain = (text: string): Loaded => ({ body: Buffer.from(text), plain: true });
/** A String parameter's answer, known by its name and ARN when a name is given. */
export const str = (text: string, name?: string): Loaded =>
  name === undefined
    ? { body: Buffer.from(text), plain: true }
    : { body: Buffer.from(text), plain: true, ids: [`${ARN}${name}`, name] };
/** A SecureString's answer (it depends on the flag), known by its name and ARN when a name is given. */
export const sec = (text: string, name?: string): Loaded =>
  name === undefined
    ? { body: Buffer.from(text) }
    : { body: Buffer.from(text), ids: [`${ARN}${name}`, name] };
/** A listing of String parameters `[name, value]`. */
export const listing = (
  text: string,
  items: Array<[string, string]> = [],
  withDecryption = false,
): PathListing => ({
  body: Buffer.from(text),
  items: items.map(([name, value]) => ({ request: param(name, withDecryption), loaded: plain(value) })),
});
export const server500 = () => new AwsCallError('InternalFailure', 'boom', 'server', 500);
export const notFound = () => new AwsCallError('ResourceNotFoundException', 'gone', 'aws', 400);
export const paramNotFound = (code = 'ParameterNotFound') => new AwsCallError(code, 'gone', 'aws', 400);
export const throttled = () => new AwsCallError('ThrottlingException', 'Rate exceeded', 'throttled', 400);

/** Starts a read and swallows its rejection (looked at later, with outcome). */
export const start = (a: () => Answer | Promise<Answer>): Promise<Answer> => {
  let p: Promise<Answer>;
  try {
    p = Promise.resolve(a());
  } catch (e) {
    p = Promise.reject(e);
  }
  p.catch(() => {});
  return p;
};
/** `body source`, or the error code. */
export const outcome = (p: Answer | Promise<Answer>) =>
  Promise.resolve(p).then(
    (x) => `${x.body.toString()} ${x.source}`,
    (e: unknown) => (e instanceof AwsCallError ? e.code : String(e)),
  );

/** Starts `read`, answers its one new load with `answer`, and returns the read's outcome. */
export async function load(
  s: CacheSetup,
  read: () => Answer | Promise<Answer>,
  answer: Loaded | PathListing | Error,
): Promise<string> {
  const before = s.loader.loads.length;
  const p = start(read);
  await settle();
  assert.equal(s.loader.loads.length, before + 1, 'one new load');
  const l = s.loader.loads[before]!;
  if (answer instanceof Error) l.reject(answer);
  else l.resolve(answer as Loaded);
  return outcome(p);
}

/** A read's outcome when answered without a load (a hit); else `LOADED(n)`, its new loads left open. */
export async function read(s: CacheSetup, r: () => Answer | Promise<Answer>): Promise<string> {
  const before = s.loader.loads.length;
  const p = start(r);
  await settle();
  if (s.loader.loads.length !== before) return `LOADED(${s.loader.loads.length - before})`;
  return outcome(p);
}

/** What a read answers now: a hit at once, or whatever the load it starts is answered (by `answer`). */
export async function readNow(
  loader: ScriptedLoader,
  read: () => Answer | Promise<Answer>,
  answer: (l: ScriptedLoader['loads'][number]) => void,
): Promise<string> {
  const before = loader.loads.length;
  const p = start(read);
  await settle();
  for (const l of loader.loads.slice(before)) if (!l.settled) answer(l);
  return outcome(p);
}
