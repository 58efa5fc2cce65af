// Refresh-ahead on the test's clock: the cache and the loader in this process over real calls to the
// emulator, reads at the times the test chooses, each background refresh answered before the clock moves
// on. test/beyond.test.ts reads a key steadily end to end and asserts what holds at any speed.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { ItemRequest } from '../src/items.ts';
import { type Core, type FakeAws, startCore, startFakeAws } from './helpers/in-process.ts';

const TTL_MS = 300_000; // the SSM default, with the jitter pinned to 1
const STEP_MS = 20_000; // reads this far apart: at least one in each entry's last tenth (30 s)
const key: ItemRequest = { service: 'ssm', name: '/steady/key', withDecryption: false };

let aws: FakeAws;
let core: Core;
before(async () => {
  aws = await startFakeAws({ parameters: [{ name: '/steady/key', value: 'steady' }], secrets: [] });
  core = startCore({ batchWindowMs: 0, aws });
});
after(async () => {
  core.close();
  await aws.emu.close();
});

test('a steadily read key is refreshed by the first read in its last tenth, in the background: no read after the first waits', async () => {
  const start = core.clock.now();
  const first = await core.read(key);
  assert.ok(first.ok && first.source === 'miss');
  const sources: string[] = [];
  for (let t = STEP_MS; t <= 3 * TTL_MS; t += STEP_MS) {
    await core.clock.advance(STEP_MS);
    const got = await core.read(key);
    assert.ok(got.ok, `read at ${t / 1000} s`);
    assert.equal(JSON.parse(got.body).Parameter.Value, 'steady');
    sources.push(got.source);
    // The refresh such a read started is answered before the next read: the test says so, not the scheduler.
    await core.idle();
  }
  assert.deepEqual([...new Set(sources)], ['hit'], 'every read after the first is a hit');
  // Stored at 0, the entry's last tenth starts at 270 s: the read at 280 s refreshes it (stored again at
  // 280 s), the read at 560 s the next one, then 840 s.
  assert.deepEqual(
    core.calls.map((c) => (c.at - start) / 1000),
    [0, 280, 560, 840],
  );
});
