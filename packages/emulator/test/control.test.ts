// The control API's guards over real HTTP: a loopback Host and the control token, and the Host check
// on the AWS side; the container credentials endpoint keeps its own token.
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { GetParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { type Emulator, startEmulator } from '../index.ts';
import { awsCall, type RawResponse, rawRequest, signedQuery } from './helpers/emulator-raw.ts';

const CREDS = { accessKeyId: 'AKIACONTROLTEST00001', secretAccessKey: 'control-test-secret-key' };
const STORE = {
  parameters: [{ name: '/app/secret-config', value: 'only-for-signed-callers' }],
};

let emu: Emulator;
let ssm: SSMClient;

before(async () => {
  emu = await startEmulator({
    store: STORE,
    credentials: [CREDS],
    containerCredentials: { authToken: 'container-auth-token', ttlSeconds: 60 },
  });
  ssm = new SSMClient({ endpoint: emu.url, region: 'us-east-1', credentials: CREDS, maxAttempts: 1 });
});
after(async () => {
  ssm.destroy();
  await emu.close();
});

const port = () => new URL(emu.url).port;

function control(
  method: string,
  path: string,
  opts: { token?: string | null; host?: string; body?: unknown } = {},
): Promise<RawResponse> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (opts.token !== null) headers['x-emulator-control-token'] = opts.token ?? emu.controlToken;
  if (opts.host !== undefined) headers['host'] = opts.host;
  return rawRequest(emu.url, {
    method,
    path,
    headers,
    ...(opts.body === undefined ? {} : { body: JSON.stringify(opts.body) }),
  });
}

/** The store dump an attacker wanted: an unsigned read, which must stay refused. */
async function assertSignaturesStillChecked(): Promise<void> {
  const unsigned = await awsCall(emu.url, 'AmazonSSM.GetParametersByPath', { Path: '/', Recursive: true });
  assert.equal(unsigned.status, 400);
  assert.equal(JSON.parse(unsigned.body).__type, 'MissingAuthenticationTokenException');
  assert.ok(!unsigned.body.includes('only-for-signed-callers'));
}

describe('the control API', () => {
  test('refuses a non-loopback Host with 403, even with the right token, and changes nothing', async () => {
    for (const host of [
      'evil.example',
      `evil.example:${port()}`,
      'localhost.evil.example',
      '127.0.0.1.nip.io',
    ]) {
      const r = await control('PUT', '/__emulator/credentials', { host, body: null });
      assert.equal(r.status, 403, host);
      assert.equal(r.headers['content-type'], 'application/json');
      assert.match(JSON.parse(r.body).error, /Host header must name a loopback address/);
    }
    await assertSignaturesStillChecked();
  });

  test('refuses a missing or wrong token with 401 JSON, before naming any route', async () => {
    const wrong = `${emu.controlToken.slice(0, -1)}${emu.controlToken.endsWith('x') ? 'y' : 'x'}`;
    for (const token of [null, '', 'nope', wrong, emu.controlToken.toUpperCase() + 'x']) {
      for (const [method, path] of [
        ['PUT', '/__emulator/credentials'],
        ['GET', '/__emulator/calls'],
        ['GET', '/__emulator/health'],
        ['GET', '/__emulator/no-such-route'],
      ] as const) {
        const r = await control(method, path, { token, body: method === 'PUT' ? null : undefined });
        assert.equal(r.status, 401, `${method} ${path} with token ${JSON.stringify(token)}`);
        assert.match(JSON.parse(r.body).error, /X-Emulator-Control-Token/);
        assert.ok(!r.body.includes(emu.controlToken));
      }
    }
  });

  test('signature checking cannot be turned off without the token (Host evil.example, then a plain POST)', async () => {
    const attack = await control('PUT', '/__emulator/credentials', {
      host: 'evil.example',
      token: null,
      body: null,
    });
    assert.equal(attack.status, 403);
    const noToken = await control('PUT', '/__emulator/credentials', { token: null, body: null });
    assert.equal(noToken.status, 401);
    const badToken = await control('PUT', '/__emulator/credentials', { token: 'x'.repeat(32), body: null });
    assert.equal(badToken.status, 401);
    await assertSignaturesStillChecked();
    // The signed client is still served: nothing was changed.
    const ok = await ssm.send(new GetParameterCommand({ Name: '/app/secret-config' }));
    assert.equal(ok.Parameter?.Value, 'only-for-signed-callers');
  });

  test('answers loopback names with the token: localhost, *.localhost, 127.0.0.0/8, [::1], with or without a port', async () => {
    for (const host of [
      `127.0.0.1:${port()}`,
      '127.0.0.1',
      `localhost:${port()}`,
      'LOCALHOST',
      `app.localhost:${port()}`,
      '127.200.3.4',
      `[::1]:${port()}`,
    ]) {
      const r = await control('GET', '/__emulator/health', { host });
      assert.equal(r.status, 200, host);
      assert.deepEqual(JSON.parse(r.body), { status: 'ok', region: 'us-east-1', accountId: '123456789012' });
    }
  });

  test('a request without any Host header is refused', async () => {
    const reply = await new Promise<string>((resolve, reject) => {
      const s = connect(Number(port()), '127.0.0.1', () => {
        s.write(`GET /__emulator/health HTTP/1.0\r\nX-Emulator-Control-Token: ${emu.controlToken}\r\n\r\n`);
      });
      let data = '';
      s.on('data', (d) => {
        data += d.toString();
      });
      s.on('end', () => resolve(data));
      s.on('error', reject);
    });
    assert.match(reply, /^HTTP\/1\.[01] 403 /);
  });

  test('a token given at start is the one wanted; a bad one is refused at start', async () => {
    const token = 'my-own-control-token-0123456789';
    const own = await startEmulator({ controlToken: token });
    try {
      assert.equal(own.controlToken, token);
      const headers = { 'x-emulator-control-token': token };
      assert.equal(
        (await rawRequest(own.url, { method: 'GET', path: '/__emulator/calls', headers })).status,
        200,
      );
    } finally {
      await own.close();
    }
    await assert.rejects(startEmulator({ controlToken: 'short' }), /controlToken must be 16 to 512/);
    await assert.rejects(startEmulator({ controlToken: 'has a space in it, sadly' }), /controlToken must be/);
    // Generated tokens differ per emulator.
    const other = await startEmulator({});
    try {
      assert.notEqual(other.controlToken, emu.controlToken);
      assert.ok(other.controlToken.length >= 16);
    } finally {
      await other.close();
    }
  });

  test('the container credentials endpoint needs its own Authorization, not the control token, and a loopback Host', async () => {
    const path = '/__emulator/container-credentials';
    const minted = await rawRequest(emu.url, {
      method: 'GET',
      path,
      headers: { authorization: 'container-auth-token' },
    });
    assert.equal(minted.status, 200);
    assert.match(JSON.parse(minted.body).AccessKeyId, /^ASIA/);
    const controlTokenOnly = await control('GET', path);
    assert.equal(controlTokenOnly.status, 401);
    const rebound = await rawRequest(emu.url, {
      method: 'GET',
      path,
      headers: { authorization: 'container-auth-token', host: 'evil.example' },
    });
    assert.equal(rebound.status, 403);
    // Reconfiguring it is a control route like the others.
    const reconfigure = await control('PUT', path, {
      token: null,
      body: { authToken: 'other', ttlSeconds: 5 },
    });
    assert.equal(reconfigure.status, 401);
  });
});

describe('the AWS side', () => {
  test('a non-loopback Host gets an AWS-shaped 403 in each protocol', async () => {
    const json = await rawRequest(emu.url, {
      headers: {
        host: 'evil.example',
        'content-type': 'application/x-amz-json-1.1',
        'x-amz-target': 'AmazonSSM.GetParametersByPath',
      },
      body: '{"Path":"/","Recursive":true}',
    });
    assert.equal(json.status, 403);
    assert.equal(json.headers['content-type'], 'application/x-amz-json-1.1');
    const doc = JSON.parse(json.body);
    assert.equal(doc.__type, 'AccessDeniedException');
    assert.match(doc.message, /loopback/);

    const query = await signedQuery(emu.url, { credentials: CREDS, params: { Action: 'GetCallerIdentity' } });
    assert.equal(query.status, 200, query.body);
    const xml = await rawRequest(emu.url, {
      headers: { host: 'evil.example', 'content-type': 'application/x-www-form-urlencoded' },
      body: 'Action=GetCallerIdentity&Version=2011-06-15',
    });
    assert.equal(xml.status, 403);
    assert.match(
      xml.body,
      /^<ErrorResponse xmlns="https:\/\/sts\.amazonaws\.com\/doc\/2011-06-15\/"><Error><Type>Sender<\/Type><Code>AccessDenied<\/Code>/,
    );
  });
});
