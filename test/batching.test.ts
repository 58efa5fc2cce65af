// The batch window on the test's clock: the cache and the loader in this process, real signed calls to
// the emulator. Every read is issued before the clock moves, so which reads share a call is what the test
// says, never what the scheduler happened to do; each batched answer is compared with the answer the same
// read gets alone. test/beyond.test.ts runs the same reads end to end and asserts what holds under any timing.
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import type { ItemRequest } from '../src/items.ts';
import { BATCH_BACKOFF_MS } from '../src/loader/index.ts';
import { type Core, type FakeAws, type Got, startCore, startFakeAws } from './helpers/in-process.ts';

const WINDOW = 2;
const pad = (i: number) => String(i).padStart(2, '0');
const NAMES = Array.from({ length: 45 }, (_, i) => `/many/m${pad(i)}`);
const STORE = {
  parameters: [
    ...NAMES.map((name, i) => ({ name, value: `m-${i}` })),
    ...Array.from({ length: 10 }, (_, i) => ({ name: `/svc/p${pad(i)}`, value: `value-${i}` })),
  ],
  secrets: [
    { name: 'batch/a', secretString: 'batch-secret-a' },
    { name: 'batch/denied', secretString: 'batch-secret-denied' },
  ],
};

const param = (name: string): ItemRequest => ({ service: 'ssm', name, withDecryption: false });
const secret = (secretId: string): ItemRequest => ({ service: 'secretsmanager', secretId });

let aws: FakeAws;
/** Reads without a batch window, against the same emulator: what each read gets alone. */
let alone: Core;
const cores: Core[] = [];
before(async () => {
  aws = await startFakeAws(STORE);
  alone = startCore({ batchWindowMs: 0, aws });
  cores.push(alone);
});
after(async () => {
  for (const c of cores) c.close();
  await aws.emu.close();
});
beforeEach(() => {
  aws.emu.clearDeny();
  aws.emu.resetCalls();
});

function batched(): Core {
  const core = startCore({ batchWindowMs: WINDOW, aws });
  cores.push(core);
  return core;
}

/** What each read gets from a core without a batch window, one read at a time. */
async function asAlone(rs: ItemRequest[]): Promise<Got[]> {
  const out: Got[] = [];
  for (const r of rs) out.push(await alone.read(r));
  return out;
}

describe('upstream batching on the test clock', () => {
  test('45 concurrent single misses: four full GetParameters at once, the other five when the window closes; each answer byte for byte the single call', async () => {
    const core = batched();
    const reads = NAMES.map((n) => core.read(param(n)));
    // Ten names fill a call: those go without waiting for the window.
    assert.deepEqual(
      core.calls.map((c) => c.operation),
      ['GetParameters', 'GetParameters', 'GetParameters', 'GetParameters'],
    );
    assert.deepEqual(
      core.calls.map((c) => c.ids),
      [0, 1, 2, 3].map((k) => NAMES.slice(k * 10, k * 10 + 10)),
      'in arrival order',
    );
    await core.clock.advance(WINDOW - 1);
    assert.equal(core.calls.length, 4, 'the last five wait for the window');
    await core.clock.advance(1);
    assert.deepEqual(core.calls[4]?.ids, NAMES.slice(40));
    const got = await Promise.all(reads);
    assert.deepEqual(got, await asAlone(NAMES.map(param)));
    assert.ok(got.every((g) => g.ok && g.source === 'miss'));
    assert.equal(core.calls.length, 5, 'no single call beside the batches');
  });

  test('one missing and one denied item: each read gets exactly what it would get alone', async () => {
    const core = batched();
    aws.emu.deny(['batch/denied', '/svc/p09']);
    const secrets = ['batch/a', 'batch/missing', 'batch/denied'].map(secret);
    const secretReads = secrets.map((r) => core.read(r));
    await core.clock.advance(WINDOW);
    assert.deepEqual(
      core.calls.map((c) => `${c.operation} ${c.ids.join(',')}`),
      ['BatchGetSecretValue batch/a,batch/missing,batch/denied'],
    );
    const gotSecrets = await Promise.all(secretReads);
    assert.deepEqual(
      gotSecrets.map((g) => (g.ok ? JSON.parse(g.body).SecretString : g.code)),
      ['batch-secret-a', 'ResourceNotFoundException', 'AccessDeniedException'],
    );
    assert.deepEqual(gotSecrets, await asAlone(secrets));
    assert.equal(core.calls.length, 1, 'the errors came in the batch answer: no single call');

    // SSM: IAM refuses GetParameters as a whole when one name is denied; each name is then read alone.
    const params = ['/svc/p08', '/svc/nothing-here', '/svc/p09'].map(param);
    const paramReads = params.map((r) => core.read(r));
    await core.clock.advance(WINDOW);
    const gotParams = await Promise.all(paramReads);
    assert.deepEqual(
      core.calls.slice(1).map((c) => `${c.operation} ${c.ids.join(',')}`),
      [
        'GetParameters /svc/p08,/svc/nothing-here,/svc/p09',
        'GetParameter /svc/p08',
        'GetParameter /svc/nothing-here',
        'GetParameter /svc/p09',
      ],
    );
    assert.deepEqual(
      gotParams.map((g) => (g.ok ? JSON.parse(g.body).Parameter.Value : g.code)),
      ['value-8', 'ParameterNotFound', 'AccessDeniedException'],
    );
    assert.deepEqual(gotParams, await asAlone(params));
  });

  test('batch permission denied: single calls at once, no batch for five minutes, then batches again', async () => {
    const core = batched();
    aws.emu.denyOperations(['GetParameters']);
    const round = async (names: string[]) => {
      const from = core.calls.length;
      const reads = names.map((n) => core.read(param(n)));
      await core.clock.advance(WINDOW);
      const got = await Promise.all(reads);
      assert.deepEqual(
        got.map((g) => (g.ok ? JSON.parse(g.body).Parameter.Value : g.code)),
        names.map((n) => `value-${Number(n.slice(-2))}`),
      );
      return core.calls.slice(from).map((c) => `${c.operation} ${c.ids.join(',')}`);
    };
    assert.deepEqual(await round(['/svc/p00', '/svc/p01', '/svc/p02']), [
      'GetParameters /svc/p00,/svc/p01,/svc/p02',
      'GetParameter /svc/p00',
      'GetParameter /svc/p01',
      'GetParameter /svc/p02',
    ]);
    assert.equal(core.lines.filter((l) => l.includes('batch call failed; using single calls')).length, 1);
    assert.deepEqual(
      await round(['/svc/p03', '/svc/p04']),
      ['GetParameter /svc/p03', 'GetParameter /svc/p04'],
      'the batch call is not tried again',
    );
    await core.clock.advance(BATCH_BACKOFF_MS - 2 * WINDOW - 1);
    assert.deepEqual(
      await round(['/svc/p05', '/svc/p06']),
      ['GetParameter /svc/p05', 'GetParameter /svc/p06'],
      'still within five minutes of the refusal',
    );
    await core.clock.advance(1);
    assert.deepEqual(
      await round(['/svc/p07', '/svc/p08']),
      ['GetParameters /svc/p07,/svc/p08', 'GetParameter /svc/p07', 'GetParameter /svc/p08'],
      'five minutes on, a batch is tried again',
    );
  });
});
