// Upstream networking: HTTPS_PROXY / HTTP_PROXY / NO_PROXY read as Go reads them, CONNECT through a real
// proxy on loopback to an endpoint whose name does not resolve, a TLS front with a private CA trusted only
// through AWS_CA_BUNDLE, and the errors when any of it is wrong. The daemon is the real bundle.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { rmSync, truncateSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type Emulator, startEmulator } from '../packages/emulator/index.ts';
import { AwsJsonClient } from '../src/aws/client.ts';
import { staticCredentials } from '../src/aws/credentials.ts';
import {
  explainCertificate,
  type NoProxyRule,
  parseNoProxy,
  parseProxyUrl,
  proxyFor,
} from '../src/aws/network.ts';
import { Transports } from '../src/aws/transport.ts';
import { AwsCallError } from '../src/aws/types.ts';
import { loadConfig, MAX_CA_BUNDLE_BYTES } from '../src/config.ts';
import { Daemons, daemonEnv, runPscache, SENSITIVE, secret, TEST_CREDENTIALS } from './helpers/daemon.ts';
import {
  type ForwardProxy,
  type Front,
  makePrivateCa,
  type PrivateCa,
  startForwardProxy,
  startTlsFront,
} from './helpers/network.ts';
import { tempDir } from './helpers/temp.ts';

const PROXY_PASSWORD = 'proxy-password-5e1d-never-logged';
SENSITIVE.add(PROXY_PASSWORD);
const SECRET_VALUE = 'network-secret-value-77a0';
SENSITIVE.add(SECRET_VALUE);
/** Names under .invalid never resolve (RFC 6761): only a proxy can reach them. */
const HIDDEN = 'secretsmanager.pscache.invalid';
const DIRECT = 'direct.pscache.invalid';

describe('proxy settings, read as Go net/http reads them', () => {
  const rules = (s: string): NoProxyRule[] => parseNoProxy(s);
  const https = parseProxyUrl('http://proxy.corp:3128');
  const config = (noProxy: string) => ({ https, http: undefined, noProxy: rules(noProxy) });
  const via = (noProxy: string, host: string, port = 443) =>
    proxyFor(config(noProxy), 'https:', host, port) === undefined ? 'direct' : 'proxy';

  test('a proxy URL: scheme optional, default ports, credentials kept out of what is shown', () => {
    const p = parseProxyUrl('alice:s%40cret@proxy.corp', 'https_proxy');
    assert.deepEqual([p.protocol, p.hostname, p.port], ['http:', 'proxy.corp', 80]);
    assert.equal(p.authorization, `Basic ${Buffer.from('alice:s@cret').toString('base64')}`);
    assert.equal(p.shown, 'http://proxy.corp:80 (https_proxy)');
    assert.equal(parseProxyUrl('https://[fd00::1]').shown, 'https://[fd00::1]:443 (HTTPS_PROXY)');
    for (const bad of ['socks5://proxy:1080', 'http://proxy/path', 'http://', 'http://a b']) {
      assert.throws(() => parseProxyUrl(bad), bad);
    }
  });

  test("an answer quoting the proxy's credentials shows none of them: message, code and request id", async () => {
    const user = 'alice';
    const password = `s@cret-${PROXY_PASSWORD}`;
    const p = parseProxyUrl(`http://${user}:${encodeURIComponent(password)}@127.0.0.1:1`, 'HTTP_PROXY');
    const basic = Buffer.from(`${user}:${password}`).toString('base64');
    assert.deepEqual(
      [...p.secrets].sort(),
      [
        `Basic ${basic}`,
        basic,
        `${user}:${password}`,
        `${user}:${encodeURIComponent(password)}`,
        password,
        encodeURIComponent(password),
      ].sort(),
    );
    // A proxy (or an error page in between) that quotes the request back, in every field it can.
    const echo = createServer((req, res) => {
      const auth = String(req.headers['proxy-authorization']);
      const decoded = Buffer.from(auth.replace(/^Basic /, ''), 'base64').toString();
      res.writeHead(400, { 'x-amzn-requestid': auth, 'Content-Type': 'application/x-amz-json-1.1' });
      res.end(JSON.stringify({ __type: basic, message: `you sent ${auth} (${decoded}) ${password}` }));
    });
    await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
    try {
      const port = (echo.address() as { port: number }).port;
      const proxy = parseProxyUrl(`http://${user}:${encodeURIComponent(password)}@127.0.0.1:${port}`);
      const client = new AwsJsonClient({
        service: 'secretsmanager',
        endpoint: 'http://upstream.invalid',
        region: 'us-east-1',
        credentials: staticCredentials(TEST_CREDENTIALS),
        maxConnections: 2,
        timeoutMs: 5000,
        transports: new Transports({
          maxConnections: 2,
          maxTotal: 3,
          network: { proxy: { http: proxy, https: undefined, noProxy: [] }, caBundle: undefined },
        }),
      });
      const e = await client.call('GetSecretValue', { SecretId: 'x' }).catch((x: unknown) => x);
      client.close();
      assert.ok(e instanceof AwsCallError);
      const shown = `${e.code} ${e.message} ${e.requestId}`;
      for (const secret of proxy.secrets) assert.ok(!shown.includes(secret), shown);
      assert.equal(e.code, 'UnknownError', 'a code holding a credential is no code');
      assert.equal(e.requestId, undefined);
      assert.match(e.message, /^you sent \(redacted\) \(\(redacted\)\) \(redacted\)$/);
    } finally {
      await new Promise<void>((r) => echo.close(() => r()));
    }
  });

  test('NO_PROXY: names and their subdomains, .domains, ports, IPs, CIDR ranges, *', () => {
    const cases: Array<[string, string, number, 'direct' | 'proxy']> = [
      ['amazonaws.com', 'ssm.us-east-1.amazonaws.com', 443, 'direct'],
      ['amazonaws.com', 'amazonaws.com', 443, 'direct'],
      ['.amazonaws.com', 'amazonaws.com', 443, 'proxy'],
      ['.amazonaws.com', 'ssm.us-east-1.amazonaws.com', 443, 'direct'],
      ['*.amazonaws.com', 'sts.amazonaws.com', 443, 'direct'],
      ['notamazonaws.com', 'amazonaws.com', 443, 'proxy'],
      ['amazonaws.com:8443', 'ssm.us-east-1.amazonaws.com', 443, 'proxy'],
      ['amazonaws.com:443', 'ssm.us-east-1.amazonaws.com', 443, 'direct'],
      ['10.0.0.0/8', '10.1.2.3', 443, 'direct'],
      ['10.0.0.0/8', '11.1.2.3', 443, 'proxy'],
      ['192.168.1.10', '192.168.1.10', 443, 'direct'],
      ['192.168.1.10:80', '192.168.1.10', 443, 'proxy'],
      ['fd00::/8', '[fd00::12]', 443, 'direct'],
      ['[fd00::12]:443', 'fd00:0::12', 443, 'direct'],
      ['*', 'anything.example', 443, 'direct'],
      ['SSM.US-EAST-1.AMAZONAWS.COM', 'ssm.us-east-1.amazonaws.com', 443, 'direct'],
      // A name is matched as written, as Go does: the root's trailing dot makes another name.
      ['amazonaws.com', 'ssm.us-east-1.amazonaws.com.', 443, 'proxy'],
      ['amazonaws.com.', 'ssm.us-east-1.amazonaws.com.', 443, 'direct'],
      ['amazonaws.com.', 'ssm.us-east-1.amazonaws.com', 443, 'proxy'],
      ['', 'localhost.', 443, 'direct'],
      ['', 'ssm.us-east-1.amazonaws.com', 443, 'proxy'],
      // Loopback is never sent through a proxy, whatever NO_PROXY says.
      ['', 'localhost', 443, 'direct'],
      ['', '127.0.0.7', 443, 'direct'],
      ['', '[::1]', 443, 'direct'],
    ];
    for (const [noProxy, host, port, want] of cases) {
      assert.equal(via(noProxy, host, port), want, `NO_PROXY=${noProxy} ${host}:${port}`);
    }
    assert.equal(proxyFor(config(''), 'http:', 'example.com', 80), undefined, 'no HTTP_PROXY: direct');
  });

  test('NO_PROXY as Go keeps it: no entry is refused, unusable ones never match, IDN and IPv4-mapped match', () => {
    const unusable = ['10.*', '<local>', '10.0.0.0/8:443', 'example.com:abc', '*.', 'a b.com'];
    for (const entry of unusable) {
      const parsed = rules(`localhost,${entry}`);
      assert.deepEqual(parsed.at(-1), { kind: 'unusable', entry }, entry);
      assert.equal(via(entry, 'example.com'), 'proxy', `${entry} matched example.com`);
      assert.equal(via(entry, '10.1.2.3'), 'proxy', `${entry} matched 10.1.2.3`);
    }
    assert.deepEqual(rules('10.0.0.0/33'), [{ kind: 'unusable', entry: '10.0.0.0/33' }]);
    // Go's SplitHostPort: brackets only with a port; ports compared as text; ParseIP refuses leading zeros.
    for (const entry of ['[internal.corp]', '[10.0.0.1]', '[fd00::12]', 'example.com:0443']) {
      assert.equal(via(entry, entry.replace(/^\[|\]$|:0443$/g, ''), 443), 'proxy', entry);
    }
    assert.equal(via('010.0.0.1', '10.0.0.1'), 'proxy');
    assert.equal(via('010.0.0.0/8', '10.1.2.3'), 'proxy');
    // Non-ASCII entries are domains or nothing: never read as a URL (user info, path, query, fragment)
    // nor as an address in other digits.
    for (const entry of [
      'ü@evil.com',
      'internal.corp\\ü',
      'internal.corp?ü',
      'internal.corp#ü',
      'internal.corp/ü',
    ]) {
      assert.deepEqual(rules(entry), [{ kind: 'unusable', entry }], entry);
    }
    assert.equal(via('ü@evil.com', 'sts.evil.com'), 'proxy');
    assert.equal(via('１０.０.０.１', '10.0.0.1'), 'proxy');
    // An international name matches in its ASCII (punycode) form, as Go's idna conversion makes it.
    assert.equal(via('bücher.de', 'xn--bcher-kva.de'), 'direct');
    assert.equal(via('.bücher.de', 'www.xn--bcher-kva.de'), 'direct');
    assert.equal(via('bücher.de', 'buecher.de'), 'proxy');
    // Go compares an IPv4-mapped IPv6 address as its IPv4 address.
    assert.equal(via('10.0.0.0/8', '::ffff:10.1.2.3'), 'direct');
    assert.equal(via('10.1.2.3', '[::ffff:10.1.2.3]'), 'direct');
    assert.equal(via('::ffff:10.1.2.3', '10.1.2.3'), 'direct');
    assert.equal(via('10.0.0.0/8', '::ffff:11.1.2.3'), 'proxy');
    // An embedded IPv4 part is a group of its own (Go's netip): ::a1.2.3.4 is no address, so no range.
    for (const entry of ['::a1.2.3.4', '::ffff:a1.2.3.4', '1:2:3:4:5:6:a1.2.3.4']) {
      assert.equal(via(entry, '161.2.3.4'), 'proxy', entry);
      assert.equal(via(entry, '::a102:304'), 'proxy', entry);
    }
    assert.equal(via('::ffff:1.2.3.4', '1.2.3.4'), 'direct');
    // And an IPv4-mapped range is the IPv4 range it maps, as Go's IPNet.Contains reads it.
    assert.equal(via('::ffff:0:0/96', '10.1.2.3'), 'direct');
    assert.equal(via('::ffff:10.0.0.0/104', '10.1.2.3'), 'direct');
    assert.equal(via('::ffff:10.0.0.0/104', '::ffff:10.1.2.3'), 'direct');
    assert.equal(via('::ffff:10.0.0.0/104', '11.1.2.3'), 'proxy');
    assert.equal(via('10.1.2.3', 'fd00::a01:203'), 'proxy', 'not mapped: another address');
  });

  test('a proxy whose credential is the user name alone (http://TOKEN@proxy): the name is scrubbed', () => {
    const token = 'proxy-user-token-51c7';
    const p = parseProxyUrl(`http://${token}@proxy.corp:3128`);
    assert.ok(p.secrets.includes(token), p.secrets.join(' '));
    assert.equal(p.authorization, `Basic ${Buffer.from(`${token}:`).toString('base64')}`);
    const encoded = parseProxyUrl('http://t%40ken-12345678@proxy.corp:3128');
    assert.ok(encoded.secrets.includes('t@ken-12345678') && encoded.secrets.includes('t%40ken-12345678'));
    // With a password the user name is not the secret; a name under 12 characters is no token, and
    // scrubbing `proxy` would cut pscache's own `http://proxy.corp` out of every message.
    assert.ok(!parseProxyUrl('http://alice:pw-secret@proxy.corp').secrets.includes('alice'));
    assert.deepEqual(parseProxyUrl('http://proxy@proxy.corp').secrets.includes('proxy'), false);
  });

  test('certificate failures no CA can mend are named as such; every code names the host and AWS_CA_BUNDLE', () => {
    const explained = (code: string, bundle?: { path: string; pem: string }) => {
      const e = Object.assign(new Error('unsuitable certificate purpose'), { code });
      explainCertificate(e, 'ssm.us-east-1.amazonaws.com', bundle);
      return e.message;
    };
    for (const code of [
      'INVALID_PURPOSE',
      'CERT_REVOKED',
      'CERT_HAS_EXPIRED',
      'ERROR_IN_CERT_NOT_AFTER_FIELD',
    ]) {
      const m = explained(code);
      assert.match(m, /^the TLS certificate of ssm\.us-east-1\.amazonaws\.com is not trusted: /, code);
      assert.match(
        m,
        new RegExp(`\\(${code}\\); the certificate itself .*AWS_CA_BUNDLE cannot mend this`),
        code,
      );
    }
    for (const code of [
      'CERT_CHAIN_TOO_LONG',
      'UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY',
      'SELF_SIGNED_CERT_IN_CHAIN',
    ]) {
      assert.match(explained(code), /set AWS_CA_BUNDLE to a PEM file holding that CA/, code);
      assert.match(
        explained(code, { path: '/etc/ca.pem', pem: '' }),
        /no CA of AWS_CA_BUNDLE \(\/etc\/ca\.pem\)/,
      );
    }
    assert.match(explained('HOSTNAME_MISMATCH'), /made out to another name/);
    assert.equal(explained('ECONNRESET'), 'unsuitable certificate purpose', 'not a certificate failure');
  });

  test('bad values stop start-up naming the variable; a proxy URL is never echoed', () => {
    const base = { AWS_REGION: 'us-east-1' };
    const err = (env: Record<string, string>) => {
      try {
        loadConfig({ ...base, ...env });
      } catch (e) {
        return (e as Error).message;
      }
      return 'accepted';
    };
    const socks = err({ HTTPS_PROXY: `socks5://u:${PROXY_PASSWORD}@proxy:1080` });
    assert.match(socks, /^HTTPS_PROXY=\(hidden\) is invalid: the socks5 scheme is not supported/);
    assert.ok(!socks.includes(PROXY_PASSWORD));
    assert.match(
      err({ http_proxy: 'https://proxy:3128' }),
      /^http_proxy=\(hidden\) is invalid: must be an http:\/\//,
    );
    // NO_PROXY=" " is set, with no entries (Go's getEnvAny takes any value but ""): no_proxy is not read.
    const blank = loadConfig({ ...base, HTTPS_PROXY: 'proxy.corp:3128', NO_PROXY: ' ', no_proxy: '*' });
    assert.deepEqual(blank.network.proxy?.noProxy, []);
    assert.deepEqual(
      loadConfig({ ...base, HTTPS_PROXY: 'proxy.corp:3128', NO_PROXY: '', no_proxy: '*' }).network.proxy
        ?.noProxy,
      [{ kind: 'all' }],
      'an empty NO_PROXY is unset: no_proxy is read',
    );
    // NO_PROXY never stops start-up (Go refuses no entry); with a proxy set, one warning names what never matches.
    assert.deepEqual(
      loadConfig({ ...base, NO_PROXY: 'a b.com,10.0.0.0/33' }).warnings,
      [],
      'no proxy: no warning',
    );
    assert.deepEqual(
      loadConfig({ ...base, HTTPS_PROXY: 'proxy.corp:3128', no_proxy: '.internal, a b.com,10.0.0.0/33' })
        .warnings,
      [
        'no_proxy: "a b.com", "10.0.0.0/33" name no host, .domain, IP address or CIDR range and will never match; every other entry applies',
      ],
    );
    const many = Array.from({ length: 7 }, (_, i) => `bad${i}.*`).join(',');
    assert.match(
      loadConfig({ ...base, HTTPS_PROXY: 'proxy.corp:3128', NO_PROXY: many }).warnings[0]!,
      /^NO_PROXY: "bad0\.\*", .*"bad4\.\*", and 2 more name no host/,
    );
    for (const device of ['/dev/zero', '/dev/null']) {
      assert.match(
        err({ AWS_CA_BUNDLE: device }),
        new RegExp(`^AWS_CA_BUNDLE="${device}" is invalid: it is not a regular file: name a PEM file`),
      );
    }
    assert.match(
      err({ AWS_CA_BUNDLE: '/nonexistent/ca.pem' }),
      /^AWS_CA_BUNDLE="\/nonexistent\/ca\.pem" is invalid: the file could not be read \(ENOENT\)/,
    );
    const dir = tempDir('ca-bad');
    try {
      writeFileSync(join(dir, 'empty.pem'), 'not a certificate\n');
      assert.match(err({ AWS_CA_BUNDLE: join(dir, 'empty.pem') }), /holds no PEM certificate/);
      writeFileSync(
        join(dir, 'broken.pem'),
        '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n',
      );
      assert.match(
        err({ AWS_CA_BUNDLE: join(dir, 'broken.pem') }),
        /certificate 1 of 1 in the file is malformed/,
      );
      assert.match(err({ AWS_CA_BUNDLE: dir }), /is invalid: it is a directory: name a PEM file/);
      // A FIFO nobody writes to: refused at once (it used to hold the start forever).
      execFileSync('mkfifo', [join(dir, 'fifo.pem')]);
      assert.match(err({ AWS_CA_BUNDLE: join(dir, 'fifo.pem') }), /is invalid: it is not a regular file/);
      // Far larger than any bundle (sparse: no disk used).
      writeFileSync(join(dir, 'huge.pem'), '');
      truncateSync(join(dir, 'huge.pem'), MAX_CA_BUNDLE_BYTES + 1);
      assert.match(
        err({ AWS_CA_BUNDLE: join(dir, 'huge.pem') }),
        /is invalid: the file is larger than 16 MiB/,
      );
      // 4 MiB of BEGIN lines without an END: one pass over it (a backtracking pattern took minutes).
      writeFileSync(join(dir, 'begins.pem'), '-----BEGIN CERTIFICATE-----\n'.repeat(150_000));
      assert.match(err({ AWS_CA_BUNDLE: join(dir, 'begins.pem') }), /holds no PEM certificate/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    const c = loadConfig({ ...base, https_proxy: 'proxy.corp:3128', NO_PROXY: '.internal,10.0.0.0/8' });
    assert.equal(c.network.proxy?.https?.shown, 'http://proxy.corp:3128 (https_proxy)');
    assert.equal(c.network.proxy?.noProxy.length, 2);
    assert.equal(loadConfig(base).network.proxy, undefined);
  });
});

describe('through a TLS front with a private CA, and a CONNECT proxy', () => {
  let emu: Emulator;
  let ca: PrivateCa;
  let front: Front;
  let proxy: ForwardProxy;
  let plainProxy: ForwardProxy;
  const daemons = new Daemons(() => emu.url);

  before(async () => {
    ca = makePrivateCa([HIDDEN, DIRECT]);
    emu = await startEmulator({
      store: { parameters: [], secrets: [{ name: 'net/secret', secretString: SECRET_VALUE }] },
      credentials: [TEST_CREDENTIALS],
      hostNames: [HIDDEN, DIRECT],
    });
    front = await startTlsFront(ca, emu.url);
    proxy = await startForwardProxy({
      connectTo: () => front.port,
      forwardTo: emu.url,
      credentials: `alice:${PROXY_PASSWORD}`,
    });
    plainProxy = await startForwardProxy({ connectTo: () => front.port, forwardTo: emu.url });
  });

  after(async () => {
    await daemons.stopAll();
    await proxy?.close();
    await plainProxy?.close();
    await front?.close();
    await emu?.close();
    ca?.remove();
  });

  const start = (endpoint: string, extra: Record<string, string> = {}) =>
    daemons.start({}, { env: { ...daemonEnv(endpoint, 0), ...extra } });

  test('without AWS_CA_BUNDLE the read fails naming the certificate and the variable; with it, 200', async () => {
    const untrusted = await start(front.url);
    const r = await untrusted.get(secret('net/secret'));
    assert.equal(r.status, 502, r.body);
    const body = JSON.parse(r.body) as { __type: string; message: string };
    assert.equal(body.__type, 'UNABLE_TO_VERIFY_LEAF_SIGNATURE');
    assert.match(body.message, /^the TLS certificate of 127\.0\.0\.1 is not trusted: .*certificate/);
    assert.match(body.message, /set AWS_CA_BUNDLE to a PEM file holding that CA/);
    const before = front.requests;
    const trusted = await start(front.url, { AWS_CA_BUNDLE: ca.caFile });
    const ok = await trusted.get(secret('net/secret'));
    assert.equal(ok.status, 200, ok.body);
    assert.equal((JSON.parse(ok.body) as { SecretString: string }).SecretString, SECRET_VALUE);
    assert.equal(front.requests, before + 1);
    const out = (await daemons.stop(untrusted)).output;
    assert.match(out, /WARN upstream request failed .*code=UNABLE_TO_VERIFY_LEAF_SIGNATURE/);
  });

  test('HTTPS_PROXY: CONNECT to a name that does not resolve here, with the credentials of the URL', async () => {
    const calls = proxy.calls.length;
    const d = await start(`https://${HIDDEN}:${front.port}`, {
      AWS_CA_BUNDLE: ca.caFile,
      HTTPS_PROXY: `http://alice:${PROXY_PASSWORD}@127.0.0.1:${proxy.port}`,
      PARAMETERS_SECRETS_EXTENSION_LOG_LEVEL: 'debug',
    });
    const r = await d.get(secret('net/secret'));
    assert.equal(r.status, 200, r.body);
    assert.equal((JSON.parse(r.body) as { SecretString: string }).SecretString, SECRET_VALUE);
    const connects = proxy.calls.slice(calls);
    assert.deepEqual(
      connects.map((c) => [c.method, c.target]),
      [['CONNECT', `${HIDDEN}:${front.port}`]],
    );
    assert.equal(
      connects[0]!.authorization,
      `Basic ${Buffer.from(`alice:${PROXY_PASSWORD}`).toString('base64')}`,
    );
    // The pooled tunnel is reused: a second read that misses opens no second CONNECT.
    assert.equal((await d.get(secret('net/secret', '&refreshNow=true'))).status, 200);
    assert.equal(proxy.calls.length, calls + 1);
    const out = (await daemons.stop(d)).output;
    assert.ok(!out.includes(PROXY_PASSWORD), 'the proxy password was logged');
    assert.match(out, /proxy="http:\/\/127\.0\.0\.1:\d+ \(HTTPS_PROXY\)"/);
  });

  test('NO_PROXY: a listed name is reached directly (and here does not resolve), others through the proxy', async () => {
    const calls = plainProxy.calls.length;
    const direct = await start(`https://${DIRECT}:${front.port}`, {
      AWS_CA_BUNDLE: ca.caFile,
      HTTPS_PROXY: plainProxy.url,
      NO_PROXY: `localhost,.pscache.example,${DIRECT}`,
    });
    const r = await direct.get(secret('net/secret'));
    assert.equal(r.status, 502, r.body);
    // ENOTFOUND from a resolver that answers; EAI_AGAIN from a host without DNS (the proxy's silence
    // below is what this test is about).
    assert.match((JSON.parse(r.body) as { __type: string }).__type, /^(ENOTFOUND|EAI_AGAIN)$/);
    assert.equal(plainProxy.calls.length, calls, 'NO_PROXY was not honoured');
    const proxied = await start(`https://${HIDDEN}:${front.port}`, {
      AWS_CA_BUNDLE: ca.caFile,
      https_proxy: plainProxy.url,
      no_proxy: DIRECT,
    });
    assert.equal((await proxied.get(secret('net/secret'))).status, 200);
    assert.equal(plainProxy.calls.length, calls + 1);
  });

  test('a proxy that wants credentials, or is down: 502 naming the proxy, never its password', async () => {
    const refused = await start(`https://${HIDDEN}:${front.port}`, {
      AWS_CA_BUNDLE: ca.caFile,
      HTTPS_PROXY: `http://alice:wrong-${PROXY_PASSWORD}@127.0.0.1:${proxy.port}`,
    });
    const r = await refused.get(secret('net/secret'));
    assert.equal(r.status, 502, r.body);
    const body = JSON.parse(r.body) as { __type: string; message: string };
    assert.equal(body.__type, 'ProxyConnectFailed');
    assert.match(
      body.message,
      new RegExp(
        `^the proxy http://127\\.0\\.0\\.1:${proxy.port} \\(HTTPS_PROXY\\) answered 407 to CONNECT ${HIDDEN.replaceAll('.', '\\.')}:${front.port}: it refused the user name and password`,
      ),
    );
    const down = await start(`https://${HIDDEN}:${front.port}`, {
      AWS_CA_BUNDLE: ca.caFile,
      HTTPS_PROXY: `http://alice:${PROXY_PASSWORD}@127.0.0.1:1`,
    });
    const d = await down.get(secret('net/secret'));
    assert.equal(d.status, 502, d.body);
    assert.equal((JSON.parse(d.body) as { __type: string }).__type, 'ECONNREFUSED');
    assert.match(d.body, /the proxy http:\/\/127\.0\.0\.1:1 \(HTTPS_PROXY\): connect ECONNREFUSED/);
  });

  test('HTTP_PROXY: a plain-http endpoint goes through the proxy in absolute form', async () => {
    const calls = plainProxy.calls.length;
    const port = new URL(emu.url).port;
    const d = await start(`http://${HIDDEN}:${port}`, { HTTP_PROXY: plainProxy.url });
    const r = await d.get(secret('net/secret'));
    assert.equal(r.status, 200, r.body);
    assert.deepEqual(
      plainProxy.calls.slice(calls).map((c) => [c.method, c.target]),
      [['POST', `http://${HIDDEN}:${port}/`]],
    );
  });

  test('a proxy URL with a password is refused without echoing it', async () => {
    const r = await runPscache(['serve'], {
      ...daemonEnv(emu.url, 2773),
      HTTPS_PROXY: `ftp://alice:${PROXY_PASSWORD}@proxy`,
    });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /^pscache: HTTPS_PROXY=\(hidden\) is invalid: the ftp scheme is not supported/);
  });
});
