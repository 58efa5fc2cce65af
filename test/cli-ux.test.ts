// What a new user sees from the commands: `pscache dev --store FILE` suggests reads of that store's own
// names (and they answer 200), a port already taken is named by the flag that sets it, and the serving
// line lists ::1 once it is bound.
import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  Daemons,
  freePort,
  httpGet,
  type RunningProcess,
  runPscache,
  sleep,
  spawnPscache,
} from './helpers/daemon.ts';
import { tempDir } from './helpers/temp.ts';
import { startWorld, type World } from './helpers/world.ts';

let dir: string;
let world: World;
const daemons = new Daemons(() => world.emu.url);
before(async () => {
  dir = tempDir('cli-ux');
  world = await startWorld();
});
after(async () => {
  await daemons.stopAll();
  await world.close();
  rmSync(dir, { recursive: true, force: true });
});

async function printed(p: RunningProcess, re: RegExp): Promise<string> {
  for (let i = 0; i < 750 && !re.test(p.output()); i++) await sleep(20);
  assert.match(p.output(), re);
  return p.output();
}

/** Holds a loopback port, as another process would. */
async function hold(): Promise<{ port: number; server: Server }> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const a = server.address();
  return { port: typeof a === 'object' && a ? a.port : 0, server };
}

describe('pscache dev --store FILE', () => {
  test('the Try: lines read names of that store, and each answers as it says', async () => {
    const store = join(dir, 'shop.json');
    writeFileSync(
      store,
      JSON.stringify({
        parameters: [
          { name: '/shop/api.url', value: 'https://shop.example' },
          { name: '/shop/signing-key', type: 'SecureString', value: 'shop-key' },
          { name: '/elsewhere', value: 'x', region: 'eu-west-1' },
        ],
        secrets: [
          { name: 'shop/db@main', secretString: 'shop-db', previous: { secretString: 'shop-db-old' } },
        ],
      }),
    );
    const port = await freePort();
    const p = daemons.track(
      await spawnPscache(['dev', '--store', store, '--port', String(port)], {}, { port }),
    );
    const out = await printed(p, /Press Ctrl\+C to stop/);
    const tries = out.slice(out.indexOf('Try:'), out.indexOf('Point the AWS CLI')).split('\n');
    const urls = tries.flatMap((l) => /'(http:\/\/localhost:\d+[^']+)'/.exec(l)?.[1] ?? []);
    assert.deepEqual(
      urls.map((u) => decodeURIComponent(new URL(u).search)),
      [
        '?name=/shop/api.url',
        '?name=/shop/signing-key&withDecryption=true',
        '?secretId=shop/db@main',
        '?secretId=shop/db@main&versionStage=AWSPREVIOUS',
        '?secretId=does-not-exist',
      ],
    );
    assert.doesNotMatch(out, /myapp|prod%2Fdb/, 'a name of the example store');
    assert.match(out, /aws ssm get-parameter --name \/shop\/api\.url$/m);
    const token = /^token: (\S+)$/m.exec(out)![1]!;
    const statuses = [];
    for (const u of urls) {
      const url = new URL(u);
      statuses.push((await httpGet(port, `${url.pathname}${url.search}`, { token })).status);
    }
    assert.deepEqual(statuses, [200, 200, 200, 200, 404]);
  });
});

describe('a port already in use', () => {
  test('dev --port names --port; dev --emulator-port names --emulator-port', async () => {
    const taken = await hold();
    try {
      const dev = await runPscache(['dev', '--port', String(taken.port)], {}, 15000);
      assert.equal(dev.code, 2, dev.stderr);
      assert.equal(
        dev.stderr,
        `pscache: port ${taken.port} on 127.0.0.1 is already in use (another pscache or emulator?); pass --port with a free port\n`,
      );
      const emu = await runPscache(
        ['dev', '--port', String(await freePort()), '--emulator-port', String(taken.port)],
        {},
        15000,
      );
      assert.equal(emu.code, 2, emu.stderr);
      assert.match(emu.stderr, /pass --emulator-port with a free port/);
    } finally {
      await new Promise((r) => taken.server.close(r));
    }
  });

  test('emulator --port: a clear line, not a bare listen EADDRINUSE', async () => {
    const taken = await hold();
    try {
      const r = await runPscache(['emulator', '--port', String(taken.port)], {});
      assert.equal(r.code, 2, r.stderr);
      assert.equal(
        r.stderr,
        `pscache: port ${taken.port} on 127.0.0.1 is already in use (another pscache or emulator?); pass --port with a free port\n`,
      );
    } finally {
      await new Promise((r) => taken.server.close(r));
    }
  });

  test('serve keeps naming its variable', async () => {
    const taken = await hold();
    try {
      const r = await runPscache(['serve'], {
        AWS_REGION: 'us-east-1',
        PARAMETERS_SECRETS_EXTENSION_TOKEN: 'x'.repeat(32),
        PARAMETERS_SECRETS_EXTENSION_HTTP_PORT: String(taken.port),
      });
      assert.equal(r.code, 1);
      assert.match(r.stderr, /set PARAMETERS_SECRETS_EXTENSION_HTTP_PORT to a free port/);
    } finally {
      await new Promise((r) => taken.server.close(r));
    }
  });
});

test('the serving line lists ::1 when pscache binds it', async () => {
  // Whether this host can bind [::1] at all: if not, 127.0.0.1 alone is right.
  const v6 = await new Promise<boolean>((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(0, '::1', () => s.close(() => resolve(true)));
  });
  const d = await daemons.start();
  const line = (await printed(d, /serving on port/)).split('\n').find((l) => l.includes('serving on port'))!;
  const want = `addresses=127.0.0.1:${d.port}${v6 ? `,[::1]:${d.port}` : ''} `;
  assert.ok(line.includes(want), `${line} lacks ${want}`);
  if (v6) assert.equal((await httpGet(d.port, '/ping', { token: null })).status, 200);
});
