// Outbound sockets: one pool per endpoint host whoever signs (roles never multiply pools), a cap over all
// hosts, and an idle socket of another host closed when a new host needs room at the cap. In-process
// clients against the emulator and against counting servers on loopback.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { type Emulator, startEmulator } from '../packages/emulator/index.ts';
import { AwsJsonClient } from '../src/aws/client.ts';
import { staticCredentials } from '../src/aws/credentials.ts';
import { createUpstream } from '../src/aws/index.ts';
import { Transports } from '../src/aws/transport.ts';
import { AwsCallError } from '../src/aws/types.ts';
import { loadConfig } from '../src/config.ts';
import { silentLogger } from '../src/log.ts';
import { TEST_CREDENTIALS } from './helpers/daemon.ts';

const REGIONS = [
  'us-east-1',
  'us-east-2',
  'us-west-1',
  'us-west-2',
  'eu-west-1',
  'eu-central-1',
  'ap-south-1',
];
const ROLES = Array.from({ length: 20 }, (_, i) => `arn:aws:iam::123456789012:role/pool-${i}`);

/** Every call ends in an answer, an AWS error included: what counts here is the socket it used. */
const settle = (p: Promise<unknown>) =>
  p.then(
    () => 'ok',
    (e: unknown) => (e instanceof AwsCallError ? 'aws' : Promise.reject(e)),
  );

describe('roles × Regions share the pool of their endpoint host', () => {
  let emu: Emulator;
  before(async () => {
    emu = await startEmulator({ store: { parameters: [], secrets: [] }, credentials: [TEST_CREDENTIALS] });
  });
  after(() => emu.close());

  const config = () =>
    loadConfig({
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: TEST_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: TEST_CREDENTIALS.secretAccessKey,
      AWS_ENDPOINT_URL: emu.url,
      PARAMETERS_SECRETS_EXTENSION_MAX_CONNECTIONS: '3',
    });

  test(`21 principals × ${REGIONS.length} Regions × 2 services: one pool, at most 3 sockets (each client alone: one pool each)`, async () => {
    const upstream = createUpstream(config(), silentLogger);
    const principals = [undefined, ...ROLES];
    const reads: Promise<string>[] = [];
    let clients = 0;
    for (const roleArn of principals) {
      for (const region of REGIONS) {
        for (const service of ['ssm', 'secretsmanager'] as const) {
          const c = upstream.client(service, { roleArn, region });
          clients++;
          reads.push(
            settle(
              service === 'ssm'
                ? c.call('GetParameter', { Name: '/pool/missing' })
                : c.call('GetSecretValue', { SecretId: 'pool/missing' }),
            ),
          );
        }
      }
    }
    const outcomes = await Promise.all(reads);
    assert.equal(clients, 21 * REGIONS.length * 2);
    assert.ok(
      outcomes.every((o) => o === 'aws'),
      'every read reached the emulator (ParameterNotFound, ...)',
    );
    // Every client's endpoint is the emulator: one host, one pool, whoever signed and for whichever Region.
    const shared = upstream.transports.open;
    assert.equal(shared.pools, 1);
    assert.ok(shared.sockets <= 3, `${shared.sockets} sockets for one host`);
    upstream.close();
    assert.equal(upstream.transports.open.sockets, 0, 'close() closes the shared pools');

    // The same clients each with a pool of its own (how every client was made before): one pool per client.
    const own = Array.from(
      { length: clients },
      () =>
        new AwsJsonClient({
          service: 'ssm',
          endpoint: emu.url,
          region: 'us-east-1',
          credentials: staticCredentials(TEST_CREDENTIALS),
          maxConnections: 3,
          timeoutMs: 0,
        }),
    );
    await Promise.all(own.map((c) => settle(c.call('GetParameter', { Name: '/pool/missing' }))));
    const pools = own.reduce(
      (n, c) => n + (c as unknown as { transports: Transports }).transports.open.pools,
      0,
    );
    assert.equal(pools, clients);
    for (const c of own) c.close();
  });
});

/** A JSON endpoint whose answers wait until released, counting the connections it sees. */
interface Held {
  server: Server;
  url: string;
  held: Array<() => void>;
  connections: number;
}

async function holdingServer(): Promise<Held> {
  const h: Held = { server: createServer(), url: '', held: [], connections: 0 };
  const sockets = new Set<Socket>();
  h.server.on('connection', (s: Socket) => {
    h.connections++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  h.server.on('request', (req, res) => {
    req.resume();
    req.on('end', () =>
      h.held.push(() => {
        res.writeHead(200, { 'content-type': 'application/x-amz-json-1.1' });
        res.end('{}');
      }),
    );
  });
  await new Promise<void>((r) => h.server.listen(0, '127.0.0.1', r));
  const a = h.server.address();
  h.url = `http://127.0.0.1:${typeof a === 'object' && a ? a.port : 0}`;
  const close = h.server.close.bind(h.server);
  h.server.close = ((cb?: () => void) => {
    for (const s of sockets) s.destroy();
    return close(cb);
  }) as Server['close'];
  return h;
}

const turn = () => new Promise((r) => setImmediate(r));

describe('one cap over every host', () => {
  const HOSTS = 10;
  const PER_HOST = 3;
  const CAP = 8;
  let servers: Held[];
  before(async () => {
    servers = await Promise.all(Array.from({ length: HOSTS + 1 }, holdingServer));
  });
  after(async () => {
    for (const s of servers) await new Promise((r) => s.server.close(r));
  });

  test(`${HOSTS} hosts × 5 concurrent calls: never more than ${PER_HOST} sockets a host nor ${CAP} in all; every call answered`, async () => {
    const transports = new Transports({ maxConnections: PER_HOST, maxTotal: CAP });
    const clients = servers.slice(0, HOSTS).map(
      (s) =>
        new AwsJsonClient({
          service: 'ssm',
          endpoint: s.url,
          region: 'us-east-1',
          credentials: staticCredentials(TEST_CREDENTIALS),
          maxConnections: PER_HOST,
          transports,
          timeoutMs: 0,
          maxAttempts: 1,
        }),
    );
    let done = 0;
    const calls = clients.flatMap((c) =>
      Array.from({ length: 5 }, () => c.call('GetParameter', { Name: '/x' }).then(() => done++)),
    );
    let maxOpen = 0;
    const check = () => {
      const open = transports.open.sockets;
      maxOpen = Math.max(maxOpen, open);
      assert.ok(open <= CAP, `${open} sockets open`);
      for (const s of servers) assert.ok(s.connections <= PER_HOST * 10, 'runaway connections');
    };
    // Answer whatever is held, a turn at a time, until all 50 calls are answered.
    while (done < calls.length) {
      await turn();
      check();
      for (const s of servers) for (const release of s.held.splice(0)) release();
    }
    await Promise.all(calls);
    assert.ok(maxOpen >= CAP - 1, `the cap was reached (${maxOpen} open at most)`);
    for (const s of servers.slice(0, HOSTS)) {
      assert.ok(s.connections >= 1, 'every host was served');
    }
    const agent = (await transports.for('http:')).agent;
    for (const [name, list] of Object.entries({ ...agent.sockets, ...agent.freeSockets })) {
      assert.ok((list?.length ?? 0) <= PER_HOST, `${name}: ${list?.length} sockets`);
    }

    // At the cap with every socket idle (Node keeps one less at rest, see nodeCap): a new host gets one of
    // them closed for it at once, rather than waiting for their idle timeout.
    const idleBefore = Object.values(agent.freeSockets).reduce((n, l) => n + (l?.length ?? 0), 0);
    assert.equal(transports.open.sockets, idleBefore, 'every socket is idle');
    assert.equal(idleBefore, CAP - 1);
    const newcomer = servers[HOSTS]!;
    const client = new AwsJsonClient({
      service: 'ssm',
      endpoint: newcomer.url,
      region: 'us-east-1',
      credentials: staticCredentials(TEST_CREDENTIALS),
      maxConnections: PER_HOST,
      transports,
      timeoutMs: 0,
      maxAttempts: 1,
    });
    const call = client.call('GetParameter', { Name: '/x' });
    while (newcomer.held.length === 0) await turn();
    const othersIdle = Object.entries(agent.freeSockets)
      .filter(([name]) => !name.startsWith(`127.0.0.1:${new URL(newcomer.url).port}:`))
      .reduce((n, [, l]) => n + (l?.length ?? 0), 0);
    assert.equal(othersIdle, idleBefore - 1, 'exactly one idle socket of another host was closed');
    newcomer.held.shift()!();
    assert.deepEqual(await call, {});
    transports.destroy();
  });
});
