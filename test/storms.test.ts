// A throttling storm with every order fixed by the test: the cache and the loader in this process, the
// emulator's rate limit on a stopped clock (so exactly its burst gets through, however fast or slow the
// machine is), all reads issued before any answer. test/faults.test.ts runs a storm end to end and asserts
// what holds under any timing; `npm run bench` measures the calls a real-time storm makes.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { ItemRequest } from '../src/items.ts';
import { type Core, type FakeAws, startCore, startFakeAws } from './helpers/in-process.ts';

const NAMES = Array.from({ length: 30 }, (_, i) => `/storm/p${String(i).padStart(2, '0')}`);
const LIMIT = 5;
const param = (name: string): ItemRequest => ({ service: 'ssm', name, withDecryption: false });
const parameterValue = (body: string) => JSON.parse(body).Parameter.Value as string;

let aws: FakeAws;
let core: Core;
before(async () => {
  aws = await startFakeAws({
    parameters: NAMES.map((name, i) => ({ name, value: `storm-value-${i}` })),
    secrets: [],
  });
  // Batching off, as in the end-to-end storm: thirty distinct single calls.
  core = startCore({ batchWindowMs: 0, aws });
});
after(async () => {
  core.close();
  await aws.emu.close();
});

test('a throttling storm: the two reads of a name share one call, exactly the burst gets values, every other call makes three attempts and answers ThrottlingException', async () => {
  aws.freeze(Date.now());
  aws.emu.setRateLimit({ ssmTps: LIMIT });
  const reads = [...NAMES, ...NAMES].map((n) => core.read(param(n)));
  assert.equal(core.calls.length, NAMES.length, 'one call per name: the second read joined the first');
  assert.ok(core.calls.every((c, i) => c.operation === 'GetParameter' && c.ids[0] === NAMES[i]));
  const got = await Promise.all(reads);

  const served = NAMES.filter((_, i) => got[i]!.ok);
  assert.equal(served.length, LIMIT, 'the stopped clock refills nothing: the burst, and no more');
  NAMES.forEach((n, i) => {
    const [first, second] = [got[i]!, got[i + NAMES.length]!];
    assert.deepEqual(second, first, `${n}: both reads got the one call's answer`);
    if (first.ok) assert.equal(parameterValue(first.body), `storm-value-${i}`);
    else assert.equal(first.code, 'ThrottlingException', n);
  });
  const throttledCalls = NAMES.length - LIMIT;
  assert.equal(
    aws.emu.calls()['GetParameter'],
    LIMIT + 3 * throttledCalls,
    'three attempts per throttled call',
  );

  // A read that comes after its name's call failed starts a call of its own (what an end-to-end storm
  // cannot rule out, and what bounds its attempts: at most three per read).
  const late = NAMES.find((n) => !served.includes(n))!;
  const again = await core.read(param(late));
  assert.deepEqual(again, { ok: false, code: 'ThrottlingException' });
  assert.equal(core.calls.length, NAMES.length + 1);
  assert.equal(aws.emu.calls()['GetParameter'], LIMIT + 3 * (throttledCalls + 1));

  // The storm passes: what was served is a hit, what was throttled left nothing behind and is read now.
  aws.emu.setRateLimit(undefined);
  aws.freeze(undefined);
  const later = await Promise.all(NAMES.map((n) => core.read(param(n))));
  NAMES.forEach((n, i) => {
    const g = later[i]!;
    assert.ok(g.ok, n);
    assert.equal(parameterValue(g.body), `storm-value-${i}`);
    assert.equal(g.source, served.includes(n) ? 'hit' : 'miss', n);
  });
  assert.equal(core.calls.length, NAMES.length + 1 + throttledCalls);
});
