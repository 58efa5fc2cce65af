// EMF in Lambda, end to end: the real Node.js layer zip run by the Extensions API stand-in (the flow the
// Lambda Runtime Interface Emulator gives an extension) against the emulator. The "function" is this test:
// one read per invoke. What the layer writes on stdout must be valid EMF with the counts that happened,
// and hold no secret value, name or token.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type Emulator, startEmulator } from '../packages/emulator/index.ts';
import { freePort, httpGet, SENSITIVE, secret, TEST_CREDENTIALS } from './helpers/daemon.ts';
import { emfLines } from './helpers/emf.ts';
import { buildLayers, type Layers } from './helpers/lambda-layer.ts';
import { type Extension, type LambdaSim, startSim } from './helpers/lambda-sim.ts';

const SESSION_TOKEN = 'lambda-emf-session-token-4a1c-never-logged';
const VALUE = 'lambda-emf-secret-value-88d2';
const NAME = 'emf/db-password-name';
for (const s of [SESSION_TOKEN, VALUE]) SENSITIVE.add(s);

let layers: Layers;
let emu: Emulator;
const running: Array<{ sim: LambdaSim; ext: Extension }> = [];

before(async () => {
  [layers, emu] = await Promise.all([
    buildLayers(),
    startEmulator({
      store: { parameters: [], secrets: [{ name: NAME, secretString: VALUE }] },
      credentials: [{ ...TEST_CREDENTIALS, sessionToken: SESSION_TOKEN }],
    }),
  ]);
});
after(async () => {
  for (const { sim, ext } of running) {
    await ext.dispose();
    await sim.close();
  }
  await emu?.close();
});

/** Runs the layer: INIT, `invokes` invokes each reading the secret once, SHUTDOWN; returns its output. */
async function run(
  invokes: number,
  env: Record<string, string> = {},
): Promise<{ output: string; statuses: string[] }> {
  const sim = await startSim();
  const port = await freePort();
  const ext = sim.launch(layers.nodejs.file, {
    env: {
      AWS_ACCESS_KEY_ID: TEST_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: TEST_CREDENTIALS.secretAccessKey,
      AWS_SESSION_TOKEN: SESSION_TOKEN,
      AWS_ENDPOINT_URL: emu.url,
      PARAMETERS_SECRETS_EXTENSION_HTTP_PORT: String(port),
      ...env,
    },
  });
  running.push({ sim, ext });
  await sim.nextCalls(1);
  const statuses: string[] = [];
  for (let i = 0; i < invokes; i++) {
    await sim.invoke();
    const r = await httpGet(port, secret(NAME), { token: SESSION_TOKEN });
    statuses.push(`${r.status} ${r.headers['x-pscache']}`);
    await sim.nextCalls(i + 2);
  }
  await sim.shutdown();
  const exit = await ext.exited;
  assert.equal(exit.code, 0, ext.output());
  return { output: ext.output(), statuses };
}

describe('EMF lines from the Lambda layer', () => {
  test('one cold and three warm invokes: a valid line at SHUTDOWN with hits 3, misses 1; nothing secret in it', async () => {
    const { output, statuses } = await run(4);
    assert.deepEqual(statuses, ['200 miss', '200 hit', '200 hit', '200 hit']);
    const lines = emfLines(output);
    assert.equal(lines.length, 1, 'one line: the interval (60 s) never passed between invokes');
    const [line] = lines;
    assert.equal(line!.namespace, 'pscache');
    assert.deepEqual(line!.dimensions, [['FunctionName']]);
    assert.equal(line!.root['FunctionName'], 'pscache-test');
    assert.ok(line!.values['Hits']! >= 3, `hits ${line!.values['Hits']}`);
    assert.equal(line!.values['Hits'], 3);
    assert.equal(line!.values['Misses'], 1);
    assert.equal(line!.values['Reads'], 4);
    assert.equal(line!.values['UpstreamCalls'], 1);
    assert.equal(line!.values['Errors'], 0);
    assert.ok(line!.values['ReadLatencyMax']! >= line!.values['ReadLatencyAvg']!);
    const raw = output.split('\n').find((l) => l.includes('"_aws"'))!;
    for (const s of [VALUE, NAME, SESSION_TOKEN, TEST_CREDENTIALS.accessKeyId]) {
      assert.ok(!raw.includes(s), 'the EMF line holds a name, a value or a credential');
    }
  });

  test('namespace and dimensions settable; PARAMETERS_SECRETS_EXTENSION_EMF=false writes none', async () => {
    const custom = await run(1, {
      PARAMETERS_SECRETS_EXTENSION_EMF_NAMESPACE: 'Payments/Cache',
      PARAMETERS_SECRETS_EXTENSION_EMF_DIMENSIONS: 'Service=payments,Stage=prod',
    });
    const [line] = emfLines(custom.output);
    assert.equal(line!.namespace, 'Payments/Cache');
    assert.deepEqual(line!.dimensions, [['Service', 'Stage']]);
    assert.deepEqual([line!.root['Service'], line!.root['Stage']], ['payments', 'prod']);
    const off = await run(1, { PARAMETERS_SECRETS_EXTENSION_EMF: 'false' });
    assert.equal(emfLines(off.output).length, 0);
    assert.match(off.output, /INFO summary /, 'the summary line stays');
  });
});
