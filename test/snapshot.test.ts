// The bundle as a V8 startup snapshot (the experiment bench/lambda.ts measures; the layers do not ship it):
// the CLI's hook lets one be built, configuration is read when a process starts from it, never when it is
// built, and nothing of the builder's environment ends up in the blob.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { SNAPSHOT, snapshotLayer } from '../bench/snapshot.ts';
import { freePort, httpGet, SENSITIVE } from './helpers/daemon.ts';
import { buildLayers } from './helpers/lambda-layer.ts';
import { type Extension, type LambdaSim, startSim, unpackLayer } from './helpers/lambda-sim.ts';

const runs = process.platform === 'linux' && process.arch === 'x64';
const skip = !runs && "the x86_64 layer's node runs on Linux x86_64 only";

/** What the builder's environment holds: none of it may be in the blob, nor used by a started process. */
const BUILD = {
  PARAMETERS_SECRETS_EXTENSION_TOKEN: 'snapshot-build-token-5c1e9a77d2',
  AWS_SESSION_TOKEN: 'snapshot-build-session-token-0f3b6c',
  AWS_SECRET_ACCESS_KEY: 'snapshot-build-secret-key-8e21d4',
  PARAMETERS_SECRETS_EXTENSION_HTTP_PORT: '2999',
  SSM_PARAMETER_STORE_TTL: '7',
  PSCACHE_SNAPSHOT_BUILD_MARKER: 'snapshot-build-marker-value-a9d3',
};
const START_TOKEN = 'snapshot-start-session-token-71ac2e';
for (const s of [...Object.values(BUILD).filter((v) => v.length > 8), START_TOKEN]) SENSITIVE.add(s);

let dir: string;
let blob: Buffer;
let sim: LambdaSim | undefined;
let ext: Extension | undefined;

before(async () => {
  if (!runs) return;
  dir = unpackLayer((await buildLayers()).x86_64.file);
  await snapshotLayer(dir, BUILD);
  blob = readFileSync(join(dir, SNAPSHOT));
});

after(async () => {
  await ext?.dispose();
  await sim?.close();
});

test('nothing of the environment it was built in is in the blob', { skip }, () => {
  assert.ok(blob.length > 1_000_000, `a blob of ${blob.length} bytes`);
  // The code is: a string of the bundle proves the scan reads the blob's strings.
  assert.ok(blob.includes('serving on port'), 'the bundle is in the blob');
  for (const [k, v] of Object.entries(BUILD)) {
    if (v.length < 5) continue;
    for (const enc of ['latin1', 'utf16le'] as const) {
      assert.ok(!blob.includes(Buffer.from(v, enc)), `${k}'s value is in the blob (${enc})`);
    }
  }
  assert.ok(!blob.includes(Buffer.from('PSCACHE_SNAPSHOT_BUILD_MARKER')), 'a variable name of the builder');
});

test('a process started from it reads its configuration then: port, TTL and token of its own environment', {
  skip,
}, async () => {
  sim = await startSim();
  const port = await freePort();
  ext = sim.launch(dir, {
    env: {
      AWS_ACCESS_KEY_ID: 'AKIAPSCACHESNAPSHOT1',
      AWS_SECRET_ACCESS_KEY: 'snapshot-start-secret-access-key',
      AWS_SESSION_TOKEN: START_TOKEN,
      PARAMETERS_SECRETS_EXTENSION_HTTP_PORT: String(port),
      SSM_PARAMETER_STORE_TTL: '42',
      PARAMETERS_SECRETS_EXTENSION_LOG_LEVEL: 'debug',
    },
  });
  await sim.nextCalls(1);
  const exe = readFileSync(`/proc/${ext.child.pid}/cmdline`, 'latin1').split('\0');
  assert.ok(exe.includes('--snapshot-blob'), `started from the snapshot: ${exe.join(' ')}`);
  assert.equal((await httpGet(port, '/ping', { token: null })).body, 'healthy');
  // The token is the start environment's AWS_SESSION_TOKEN, not anything the builder had.
  const bogus = await httpGet(port, '/systemsmanager/parameters/get?name=x', {
    token: BUILD.AWS_SESSION_TOKEN,
  });
  assert.equal(bogus.status, 401);
  const own = await httpGet(port, '/systemsmanager/parameters/get?name=x', { token: START_TOKEN });
  assert.notEqual(own.status, 401, own.body);
  await sim.shutdown();
  const r = await ext.exited;
  const { output } = await ext.dispose();
  ext = undefined;
  assert.equal(r.code, 0, output);
  assert.match(output, /serving on port (\d+)/);
  assert.equal(/serving on port (\d+)/.exec(output)?.[1], String(port));
  assert.match(output, /ssm_ttl_ms=42000\b/);
});
