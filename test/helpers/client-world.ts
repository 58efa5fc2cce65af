// The world the client tests run in: the in-process emulator seeded through the AWS SDK, and the bundled
// daemon (dist/pscache.cjs serve) in front of it on a real loopback port.
import { PutSecretValueCommand } from '@aws-sdk/client-secrets-manager';
import { daemonEnv, freePort, type RunningProcess, spawnPscache, TEST_TOKEN } from './daemon.ts';
import { sensitive, startWorld, type World } from './world.ts';

/** Names with the characters that break naive URL building, where AWS allows them. */
export const EXOTIC = {
  /** Secret names may hold `/ _ + = . @ -`. */
  secret: 'app/a+b=c@d.e_f-g',
  /** Staging labels may hold anything: `&`, `:`, `+`, spaces, non-ASCII. */
  stage: 'blue & green: ü+1 ☃',
  /** Not a valid parameter name (spaces): SSM's error quotes it back, which proves it arrived intact. */
  badParameter: '/no such/ü&x+y:z',
} as const;

/** Values the tests read back; registered as sensitive, so no daemon output may contain them. */
export const VALUES = {
  endpoint: 'https://api.example.test',
  dbPassword: sensitive('client-test-db-password-9d2f'),
  json: '{"username":"svc","port":5432,"nested":{"on":true}}',
  notJson: sensitive('not-json-secret-value-7c1e'),
  exoticCurrent: sensitive('exotic-current-5b0a'),
  exoticStaged: sensitive('exotic-staged-e41d'),
  binary: new Uint8Array([0, 1, 2, 250, 251, 252, 255, 10, 13]),
  v1: 'config-v1',
  v2: 'config-v2',
};

export interface ClientWorld {
  world: World;
  daemon: RunningProcess;
  port: number;
  /** Environment a client needs to reach the daemon (token and port). */
  env: Record<string, string>;
  close(): Promise<void>;
}

export async function startClientWorld(extraDaemonEnv: Record<string, string> = {}): Promise<ClientWorld> {
  const world = await startWorld();
  const w = world;
  await Promise.all([
    w.putParameter('/app/endpoint', VALUES.endpoint),
    w.putParameter('/app/db/password', VALUES.dbPassword, 'SecureString'),
    w.putParameter('/app/db/settings', VALUES.json),
    w.putParameter('/app/db/deep/level', 'deep-value'),
    w.putParameter('/app/flags', 'a,b,c', 'StringList'),
    w.putParameter('/app/blob', Buffer.from(VALUES.binary).toString('base64')),
    w.putParameter('/app/not-json', VALUES.notJson),
    w.putParameter('/json/one', '{"n":1}'),
    w.putParameter('/json/two', '{"n":2'),
    w.createSecret('svc/plain', VALUES.dbPassword),
    w.createSecret('svc/json', VALUES.json),
    w.createSecret('svc/not-json', VALUES.notJson),
    w.createSecret('svc/binary', VALUES.binary),
    w.createSecret('svc/json-bytes', new TextEncoder().encode(VALUES.json)),
    w.createSecret('svc/b64-string', Buffer.from(VALUES.binary).toString('base64')),
    w.createSecret(EXOTIC.secret, VALUES.exoticCurrent),
  ]);
  const v1 = await w.putParameter('/app/config', VALUES.v1);
  await w.putParameter('/app/config', VALUES.v2);
  await w.label('/app/config', v1, ['stable']);
  await w.sm.send(
    new PutSecretValueCommand({
      SecretId: EXOTIC.secret,
      SecretString: VALUES.exoticStaged,
      VersionStages: [EXOTIC.stage],
    }),
  );
  const port = await freePort();
  const daemon = await spawnPscache(['serve'], daemonEnv(world.emu.url, port, extraDaemonEnv));
  return {
    world,
    daemon,
    port,
    env: {
      PARAMETERS_SECRETS_EXTENSION_TOKEN: TEST_TOKEN,
      PARAMETERS_SECRETS_EXTENSION_HTTP_PORT: String(port),
    },
    async close() {
      const { code } = await daemon.stop();
      await world.close();
      if (code !== 0) throw new Error(`the daemon exited with ${code}`);
    },
  };
}
