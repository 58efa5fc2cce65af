// The source article's Python and Node.js snippets, adapted only to send the token header, run against
// `pscache dev` (what `npm start` runs) with the example store.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { freePort, ROOT, type RunningProcess, spawnPscache, TEST_TOKEN } from './helpers/daemon.ts';
import { tempDir } from './helpers/temp.ts';

const run = promisify(execFile);
const FIXTURES = join(ROOT, 'test/fixtures/article');
let dev: RunningProcess;
let dir: string;
let expectedSecret: string;

/** The first python3 that has `requests` (the article's examples need it). */
async function pythonWithRequests(): Promise<string> {
  for (const py of ['python3', '/usr/bin/python3']) {
    try {
      await run(py, ['-c', 'import requests']);
      return py;
    } catch {
      // try the next one
    }
  }
  throw new Error('no python3 with the requests module: .ci/run installs python3-requests');
}

before(async () => {
  const port = await freePort();
  dev = await spawnPscache(
    ['dev', '--port', String(port)],
    { PARAMETERS_SECRETS_EXTENSION_TOKEN: TEST_TOKEN },
    { port },
  );
  dir = tempDir('article');
  for (const f of ['article_basic.py', 'article_robust.py', 'run_python.py', 'article_node.cjs']) {
    writeFileSync(
      join(dir, f),
      readFileSync(join(FIXTURES, f), 'utf8').replaceAll('localhost:2773', `localhost:${port}`),
    );
  }
  const store = JSON.parse(readFileSync(join(ROOT, 'examples/store.json'), 'utf8'));
  expectedSecret = store.secrets.find((s: { name: string }) => s.name === 'prod/db/password').secretString;
});

after(async () => {
  const { code } = await dev.stop();
  assert.equal(code, 0);
});

for (const file of ['article_basic.py', 'article_robust.py']) {
  test(`the article's Python example (${file}) gets the values`, async () => {
    const py = await pythonWithRequests();
    const { stdout } = await run(py, [join(dir, 'run_python.py'), join(dir, file)], {
      env: { PATH: process.env['PATH'], AWS_SESSION_TOKEN: TEST_TOKEN },
      timeout: 20000,
    });
    const out = JSON.parse(stdout.trim().split('\n').pop()!);
    assert.deepEqual(out.handler, { statusCode: 200 });
    assert.equal(out.parameter, 'https://api.example.com');
    assert.equal(out.secret, expectedSecret);
  });
}

test("the article's Node.js example gets the values", async () => {
  const script = `const m = require(${JSON.stringify(join(dir, 'article_node.cjs'))});
    (async () => { const h = await m.handler({}); const p = await m.getParameter('/myapp/api-endpoint');
    const s = await m.getSecret('prod/db/password'); console.log(JSON.stringify({ h, p, s })); })();`;
  const { stdout } = await run(process.execPath, ['-e', script], {
    env: { PATH: process.env['PATH'], AWS_SESSION_TOKEN: TEST_TOKEN },
    timeout: 20000,
  });
  const out = JSON.parse(stdout);
  assert.deepEqual(out.h, { statusCode: 200 });
  assert.equal(out.p, 'https://api.example.com');
  assert.equal(out.s, expectedSecret);
});

test('without the token header the same call is refused with 401 and a JSON body', async () => {
  const r = await dev.get('/parameters/get?name=/myapp/api-endpoint', { token: null });
  assert.equal(r.status, 401);
  assert.equal(JSON.parse(r.body).__type, 'Unauthorized');
});

test('dev prints ready-to-paste curl lines that work', async () => {
  const line = dev
    .output()
    .split('\n')
    .find((l) => l.includes('curl') && l.includes("secretsmanager/get?secretId=prod%2Fdb%2Fpassword'"));
  assert.ok(line, 'a curl line for the secret');
  const url = /'(http:[^']+)'/.exec(line)![1]!;
  assert.ok(line.includes(TEST_TOKEN) || line.includes('$PARAMETERS_SECRETS_EXTENSION_TOKEN'));
  const r = await dev.get(new URL(url).pathname + new URL(url).search);
  assert.equal(r.status, 200);
});
