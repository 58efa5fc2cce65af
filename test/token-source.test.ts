// Token sources under one set of rules in the daemon (loadConfig, `pscache serve`), the Node client
// (resolveToken, `pscache get`) and the shell client (examples/shell/pscache-get.sh): file: URLs in every
// spelling, token files that are links, FIFOs, devices or too large, short tokens, paths mistaken for
// tokens, and the variables' order. Each case goes through all three and they must agree.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { resolveToken } from '../src/client/env.ts';
import { UnauthorizedError } from '../src/client/errors.ts';
import { NON_SECRET_PREFIXES, NON_SECRET_VARIABLES } from '../src/client/token-source.ts';
import { ConfigError, loadConfig } from '../src/config.ts';
import { BUNDLE, Daemons, freePort, ROOT, runCommand, secret } from './helpers/daemon.ts';
import { tempDir } from './helpers/temp.ts';
import { sensitive, startWorld, type World, worldHooks } from './helpers/world.ts';

const dir = tempDir('token-source');
const FILE_TOKEN = sensitive('file-token-5d1e2a7c90b4');
const OTHER_TOKEN = sensitive('other-token-8c3f61aa02d9');
const region = { AWS_REGION: 'us-east-1' };
const SCRIPT = join(ROOT, 'examples/shell/pscache-get.sh');
const isRoot = process.getuid?.() === 0;

const f = (name: string) => join(dir, name);

before(() => {
  writeFileSync(f('tok'), `${FILE_TOKEN}\n`);
  writeFileSync(f('crlf'), `${FILE_TOKEN}\r\n`);
  mkdirSync(f('sp ace'));
  writeFileSync(f('sp ace/tok'), FILE_TOKEN);
  writeFileSync(f('empty'), '');
  writeFileSync(f('short'), 'abc\n');
  writeFileSync(f('big'), 'x'.repeat(5000));
  writeFileSync(f('two-lines'), `${FILE_TOKEN}\n\n`);
  writeFileSync(f('nul'), Buffer.from('abcdefghijkl\u0000mnopqrstuvwxyz'));
  writeFileSync(f('not-utf8'), Buffer.concat([Buffer.from('abcdefghijklmnop'), Buffer.from([0xff, 0xfe])]));
  writeFileSync(f('emoji'), '\u{1f600}'.repeat(10));
  // A file whose name is the single byte 0xE9: `%e9` is no UTF-8, so no URL names it.
  writeFileSync(Buffer.concat([Buffer.from(`${dir}/`), Buffer.from([0xe9])]), FILE_TOKEN);
  writeFileSync(f('\u00e9t\u00e9'), `${FILE_TOKEN}\n`);
  symlinkSync(f('tok'), f('link'));
  symlinkSync(f('nowhere'), f('dangling'));
  execFileSync('mkfifo', [f('fifo')]);
  mkdirSync(f('a-directory-with-a-long-name'));
});

after(() => rmSync(dir, { recursive: true, force: true }));

/** What a token source comes to: the token, a refusal naming the variable, or no token at all. */
type Outcome = { token: string } | { refused: string; why: RegExp; message?: string } | { none: true };

const cases: Array<[string, Record<string, string>, Outcome]> = [
  [
    'file:/path (one slash) is a file',
    { PARAMETERS_SECRETS_EXTENSION_TOKEN: `file:${f('tok')}` },
    { token: FILE_TOKEN },
  ],
  ['file:///path', { PARAMETERS_SECRETS_EXTENSION_TOKEN: `file://${f('tok')}` }, { token: FILE_TOKEN }],
  [
    'FILE:///path, any case',
    { PARAMETERS_SECRETS_EXTENSION_TOKEN: `FILE://${f('tok')}` },
    { token: FILE_TOKEN },
  ],
  [
    'file://localhost/path',
    { PARAMETERS_SECRETS_EXTENSION_TOKEN: `file://localhost${f('tok')}` },
    { token: FILE_TOKEN },
  ],
  [
    'File://LocalHost/path',
    { PARAMETERS_SECRETS_EXTENSION_TOKEN: `File://LocalHost${f('tok')}` },
    { token: FILE_TOKEN },
  ],
  [
    'a percent-escape decoded once',
    { PARAMETERS_SECRETS_EXTENSION_TOKEN: `file://${f('sp%20ace/tok')}` },
    { token: FILE_TOKEN },
  ],
  [
    'CRLF: one line end dropped',
    { PARAMETERS_SECRETS_EXTENSION_TOKEN: `file://${f('crlf')}` },
    { token: FILE_TOKEN },
  ],
  ...(
    [
      ['file://HOST/path: another host', `file://etc${f('tok')}`, /host "etc" is not this one/],
      ['file://etc/passwd', 'file://etc/passwd', /host "etc" is not this one/],
      ['file:relative', 'file:tok', /no absolute path/],
      ['file: alone', 'file:', /no absolute path/],
      ['file:// alone', 'file://', /no absolute path/],
      ['file://localhost alone', 'file://localhost', /no absolute path/],
      ['a query', `file://${f('tok')}?x=1`, /no query or fragment/],
      ['a fragment', `file://${f('tok')}#x`, /no query or fragment/],
      ['a malformed escape', `file://${f('%zz')}`, /malformed percent-escape/],
      ['an escaped NUL', `file://${f('a%00b')}`, /NUL|malformed percent-escape/],
      ['a symbolic link', `file://${f('link')}`, /is a symbolic link/],
      ['a dangling symbolic link', `file://${f('dangling')}`, /is a symbolic link/],
      ['a FIFO', `file://${f('fifo')}`, /is (a FIFO|not a regular file)/],
      ['/dev/zero', 'file:///dev/zero', /is (a character device|not a regular file)/],
      ['a directory', `file://${f('a-directory-with-a-long-name')}`, /is (a directory|not a regular file)/],
      ['a missing file', `file://${f('missing')}`, /could not be opened \(ENOENT\)/],
      ['more than 4096 bytes', `file://${f('big')}`, /larger than 4096 bytes/],
      ['an empty file', `file://${f('empty')}`, /is empty/],
      ['a short token in a file', `file://${f('short')}`, /too short \(3 characters\)/],
      ['a file whose token ends in a line break', `file://${f('two-lines')}`, /control characters/],
      ['a NUL byte in the file', `file://${f('nul')}`, /control characters/],
      [
        '/proc/self/environ (NUL bytes, every variable)',
        'file:///proc/self/environ',
        /control characters|larger than 4096/,
      ],
      ['bytes that are not UTF-8 in the file', `file://${f('not-utf8')}`, /beyond Latin-1/],
      ['characters beyond the BMP in the file', `file://${f('emoji')}`, /beyond Latin-1/],
      ['an escape that is not UTF-8 (%e9)', `file://${dir}/%e9`, /malformed percent-escape/],
      ['an overlong escape (%c0%af)', `file://${dir}/%c0%af`, /malformed percent-escape/],
    ] as const
  ).map(([what, value, why]): [string, Record<string, string>, Outcome] => [
    what,
    { PARAMETERS_SECRETS_EXTENSION_TOKEN: value, AWS_SESSION_TOKEN: OTHER_TOKEN },
    { refused: 'PARAMETERS_SECRETS_EXTENSION_TOKEN', why },
  ]),
  [
    'a one-character token',
    { PARAMETERS_SECRETS_EXTENSION_TOKEN: 'a' },
    {
      refused: 'PARAMETERS_SECRETS_EXTENSION_TOKEN',
      why: /too short \(1 characters\): a token must have at least 16/,
    },
  ],
  [
    '15 characters',
    { AWS_TOKEN: 'x'.repeat(15) },
    { refused: 'AWS_TOKEN', why: /too short \(15 characters\)/ },
  ],
  ['16 characters', { AWS_TOKEN: 'x'.repeat(16) }, { token: 'x'.repeat(16) }],
  [
    '16 bytes but 8 characters',
    { AWS_TOKEN: '\u00e9'.repeat(8) },
    { refused: 'AWS_TOKEN', why: /too short \(8 characters\)/ },
  ],
  [
    'characters beyond Latin-1 (no request can carry them)',
    { AWS_TOKEN: '\u20ac'.repeat(16) },
    { refused: 'AWS_TOKEN', why: /beyond Latin-1/ },
  ],
  [
    'a trailing no-break space',
    { AWS_TOKEN: `${OTHER_TOKEN}\u00a0` },
    { refused: 'AWS_TOKEN', why: /begins or ends with whitespace/ },
  ],
  [
    'a percent-escaped UTF-8 name',
    { PARAMETERS_SECRETS_EXTENSION_TOKEN: `file://${dir}/%C3%A9t%c3%a9` },
    { token: FILE_TOKEN },
  ],
  [
    'longer than any header',
    { AWS_TOKEN: 'x'.repeat(16 * 1024 + 1) },
    { refused: 'AWS_TOKEN', why: /too long \(16385 characters\): no request could carry it/ },
  ],
  [
    'whitespace around',
    { PARAMETERS_SECRETS_EXTENSION_TOKEN: ` file://${f('tok')}` },
    { refused: 'PARAMETERS_SECRETS_EXTENSION_TOKEN', why: /begins or ends with whitespace/ },
  ],
  [
    'HOME as a token variable: the list is refused (configuration, not a secret)',
    {
      PARAMETERS_SECRETS_EXTENSION_TOKEN_VARIABLES: 'MY_TOKEN,HOME',
      HOME: f('a-directory-with-a-long-name'),
    },
    {
      refused: 'PARAMETERS_SECRETS_EXTENSION_TOKEN_VARIABLES',
      why: /HOME holds configuration, not a secret/,
    },
  ],
  [
    'the variables list naming itself is refused, even after a set variable',
    {
      PARAMETERS_SECRETS_EXTENSION_TOKEN_VARIABLES: 'MY_TOKEN,parameters_secrets_extension_token_variables',
      MY_TOKEN: FILE_TOKEN,
    },
    { refused: 'PARAMETERS_SECRETS_EXTENSION_TOKEN_VARIABLES', why: /holds configuration, not a secret/ },
  ],
  [
    'a variable holding a short path: too short',
    { PARAMETERS_SECRETS_EXTENSION_TOKEN_VARIABLES: 'MY_DIR', MY_DIR: '/root' },
    { refused: 'MY_DIR', why: /too short/ },
  ],
  [
    'a variable holding a long path to something here',
    { PARAMETERS_SECRETS_EXTENSION_TOKEN_VARIABLES: 'MY_DIR', MY_DIR: f('a-directory-with-a-long-name') },
    { refused: 'MY_DIR', why: /holds a path to something on this host, not a token/ },
  ],
  [
    'a variable holding a PATH-like list',
    { PARAMETERS_SECRETS_EXTENSION_TOKEN_VARIABLES: 'MY_PATH', MY_PATH: '/usr/local/bin:/usr/bin:/bin' },
    { refused: 'MY_PATH', why: /holds a path/ },
  ],
  [
    'AWS_TOKEN before AWS_SESSION_TOKEN',
    { AWS_TOKEN: FILE_TOKEN, AWS_SESSION_TOKEN: OTHER_TOKEN },
    { token: FILE_TOKEN },
  ],
  [
    'AWS_TOKEN as a token file',
    { AWS_TOKEN: `file://${f('tok')}`, AWS_SESSION_TOKEN: OTHER_TOKEN },
    { token: FILE_TOKEN },
  ],
  [
    'a blank variable is unset',
    { PARAMETERS_SECRETS_EXTENSION_TOKEN: '   ', AWS_SESSION_TOKEN: OTHER_TOKEN },
    { token: OTHER_TOKEN },
  ],
  [
    'a variable holding only a no-break space (or U+3000) is unset',
    { PARAMETERS_SECRETS_EXTENSION_TOKEN: '\u00a0', AWS_TOKEN: '\u3000 ', AWS_SESSION_TOKEN: OTHER_TOKEN },
    { token: OTHER_TOKEN },
  ],
  ['the container token last', { AWS_CONTAINER_AUTHORIZATION_TOKEN: OTHER_TOKEN }, { token: OTHER_TOKEN }],
  [
    'a blank variables list is the default list',
    { PARAMETERS_SECRETS_EXTENSION_TOKEN_VARIABLES: ' \u00a0', AWS_SESSION_TOKEN: OTHER_TOKEN },
    { token: OTHER_TOKEN },
  ],
  [
    'names in the list trimmed as the daemon trims them',
    { PARAMETERS_SECRETS_EXTENSION_TOKEN_VARIABLES: ' ,\u00a0MY_TOKEN\t, ', MY_TOKEN: FILE_TOKEN },
    { token: FILE_TOKEN },
  ],
  [
    'a list of commas only',
    { PARAMETERS_SECRETS_EXTENSION_TOKEN_VARIABLES: ' , ', AWS_SESSION_TOKEN: OTHER_TOKEN },
    { refused: 'PARAMETERS_SECRETS_EXTENSION_TOKEN_VARIABLES', why: /non-empty/ },
  ],
  [
    'a space inside a name',
    { PARAMETERS_SECRETS_EXTENSION_TOKEN_VARIABLES: 'MY TOKEN', MY: OTHER_TOKEN },
    { refused: 'PARAMETERS_SECRETS_EXTENSION_TOKEN_VARIABLES', why: /variable name/ },
  ],
  [
    'a configured list',
    {
      PARAMETERS_SECRETS_EXTENSION_TOKEN_VARIABLES: 'MY_TOKEN',
      MY_TOKEN: FILE_TOKEN,
      AWS_SESSION_TOKEN: OTHER_TOKEN,
    },
    { token: FILE_TOKEN },
  ],
  ['nothing set', {}, { none: true }],
];

function daemonOutcome(env: Record<string, string>): Outcome {
  try {
    const c = loadConfig({ ...region, ...env });
    return c.token === undefined ? { none: true } : { token: c.token };
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    return { refused: e.variable, why: /./, message: e.message };
  }
}

function clientOutcome(env: Record<string, string>): Outcome {
  try {
    return { token: resolveToken(env).token };
  } catch (e) {
    if (!(e instanceof UnauthorizedError)) throw e;
    if (e.__type === 'MissingToken') return { none: true };
    assert.equal(e.__type, 'InvalidTokenSource');
    return { refused: /^(\w+)=/.exec(e.message)?.[1] ?? '?', why: /./ };
  }
}

/** A loopback server that records the token each request carries, standing in for the daemon. */
let recorder: Server;
let recorderPort = 0;
const seen: string[] = [];

async function shellOutcome(env: Record<string, string>): Promise<Outcome & { stderr: string }> {
  seen.length = 0;
  const r = await runCommand('sh', [SCRIPT, 'secret', 'x', '--json'], {
    PSCACHE_RETRIES: '0',
    PARAMETERS_SECRETS_EXTENSION_HTTP_PORT: String(recorderPort),
    ...env,
    PATH: process.env['PATH'] ?? '/usr/bin:/bin',
  });
  if (r.code === 0) return { token: seen[0] ?? '?', stderr: r.stderr };
  assert.equal(r.code, 3, r.stderr);
  if (/no token: set PARAMETERS_SECRETS_EXTENSION_TOKEN/.test(r.stderr))
    return { none: true, stderr: r.stderr };
  return { refused: /^pscache-get: (\w+)=/.exec(r.stderr)?.[1] ?? '?', why: /./, stderr: r.stderr };
}

describe('one set of rules for the daemon and both clients', () => {
  before(async () => {
    recorder = createServer((req, res) => {
      seen.push(String(req.headers['x-aws-parameters-secrets-token']));
      res.writeHead(200, { 'Content-Type': 'application/json' }).end('{}');
    });
    await new Promise<void>((r) => recorder.listen(0, '127.0.0.1', r));
    recorderPort = (recorder.address() as { port: number }).port;
  });
  after(() => new Promise<void>((r) => recorder.close(() => r())));

  for (const [what, env, expected] of cases) {
    test(what, async () => {
      const d = daemonOutcome(env);
      const c = clientOutcome(env);
      const s = await shellOutcome(env);
      if ('token' in expected) {
        assert.deepEqual(d, expected, 'daemon');
        assert.deepEqual(c, expected, 'client');
        assert.equal('token' in s && s.token, expected.token, `shell: ${s.stderr}`);
      } else if ('none' in expected) {
        assert.deepEqual([d, c, 'none' in s], [expected, expected, true]);
      } else {
        assert.ok('refused' in d, `daemon: ${JSON.stringify(d)}`);
        assert.equal(d.refused, expected.refused);
        assert.match(d.message ?? '', expected.why, 'daemon message');
        assert.deepEqual('refused' in c && c.refused, expected.refused, 'client');
        assert.equal('refused' in s && s.refused, expected.refused, `shell: ${s.stderr}`);
        assert.equal(seen.length, 0, 'the shell client sent nothing');
        // A token read from a file is never shown; a value never is either.
        for (const m of [d.message ?? '', s.stderr])
          assert.ok(!m.includes(FILE_TOKEN) && !m.includes(OTHER_TOKEN));
      }
    });
  }
});

describe('the variables that hold configuration: one list in the daemon, the clients and the shell', () => {
  test('each is refused in a token variables list, in any case, by all three; PARAMETERS_SECRETS_EXTENSION_TOKEN is not', async () => {
    const names = [
      ...NON_SECRET_VARIABLES,
      ...NON_SECRET_PREFIXES.map((p) => `${p}SOMETHING`),
      'http_proxy',
      'aws_region',
    ];
    const refusedBy = async (name: string) => {
      const env = { PARAMETERS_SECRETS_EXTENSION_TOKEN_VARIABLES: `MY_TOKEN,${name}`, MY_TOKEN: OTHER_TOKEN };
      const d = daemonOutcome(env);
      const c = clientOutcome(env);
      const sh = await runCommand('sh', [SCRIPT, 'secret', 'x'], {
        ...env,
        PARAMETERS_SECRETS_EXTENSION_HTTP_PORT: '9',
        PSCACHE_RETRIES: '0',
      });
      return [
        'refused' in d && /holds configuration, not a secret/.test(d.message ?? ''),
        'refused' in c && c.refused === 'PARAMETERS_SECRETS_EXTENSION_TOKEN_VARIABLES',
        sh.code === 3 && sh.stderr.includes(`${name} holds configuration, not a secret`),
      ];
    };
    const wrong: string[] = [];
    for (let i = 0; i < names.length; i += 8) {
      const batch = names.slice(i, i + 8);
      const verdicts = await Promise.all(batch.map(refusedBy));
      verdicts.forEach((v, k) => {
        if (v.some((x) => !x)) wrong.push(`${batch[k]}: daemon, client, shell refused: ${v.join(', ')}`);
      });
    }
    assert.deepEqual(wrong, []);
    const allowed = {
      PARAMETERS_SECRETS_EXTENSION_TOKEN_VARIABLES: 'PARAMETERS_SECRETS_EXTENSION_TOKEN,MY_TOKEN',
      MY_TOKEN: OTHER_TOKEN,
    };
    assert.deepEqual(
      [daemonOutcome(allowed), clientOutcome(allowed)],
      [{ token: OTHER_TOKEN }, { token: OTHER_TOKEN }],
    );
    const sh = await runCommand('sh', [SCRIPT, 'secret', 'x'], {
      ...allowed,
      PARAMETERS_SECRETS_EXTENSION_HTTP_PORT: '9',
      PSCACHE_RETRIES: '0',
    });
    assert.equal(sh.code, 4, `the shell client took the token and tried to send it: ${sh.stderr}`);
  });

  test('pscache-get.sh is POSIX sh, and shellcheck clean where shellcheck is installed', async (t) => {
    assert.equal((await runCommand('sh', ['-n', SCRIPT], {})).code, 0);
    if (spawnSync('shellcheck', ['--version']).status !== 0) return t.skip('shellcheck is not installed');
    const r = await runCommand('shellcheck', ['-s', 'sh', SCRIPT], {});
    assert.equal(r.code, 0, r.stdout);
  });
});

let world: World;
const daemons = new Daemons(() => world.emu.url);

describe('end to end', () => {
  before(async () => {
    world = await startWorld();
    await world.createSecret('ts/app', sensitive('token-source-secret-value-61'));
    // Printed by the clients: not a registered secret, so their output may hold it.
    await world.createSecret('ts/printed', 'printed-by-the-clients');
  });
  worldHooks(() => world, daemons);

  test('file:/path: the daemon reads the file; the literal is never the token', async () => {
    const value = `file:${f('tok')}`;
    const d = await daemons.start({ PARAMETERS_SECRETS_EXTENSION_TOKEN: value });
    assert.equal((await d.get(secret('ts/app'), { token: FILE_TOKEN })).status, 200);
    assert.equal((await d.get(secret('ts/app'), { token: value })).status, 401);
    assert.equal((await d.get(secret('ts/app'))).status, 401);
    const { output } = await daemons.stop(d);
    assert.match(output, /token_from="PARAMETERS_SECRETS_EXTENSION_TOKEN \(file\)"/);
  });

  test('a FIFO, /dev/zero, a symbolic link: serve refuses within 5 s, exit 2, naming the variable and the file', async () => {
    for (const [value, why] of [
      [`file://${f('fifo')}`, 'is a FIFO: it must be a regular file'],
      ['file:///dev/zero', 'is a character device: it must be a regular file'],
      [`file://${f('link')}`, 'is a symbolic link'],
    ] as const) {
      const t0 = Date.now();
      const r = await runCommand(
        process.execPath,
        [BUNDLE, 'serve'],
        {
          ...region,
          PARAMETERS_SECRETS_EXTENSION_HTTP_PORT: String(await freePort()),
          PARAMETERS_SECRETS_EXTENSION_TOKEN: value,
        },
        { timeoutMs: 5000 },
      );
      assert.ok(Date.now() - t0 < 5000);
      assert.equal(r.code, 2, r.stderr);
      assert.ok(
        r.stderr.startsWith(
          `pscache: PARAMETERS_SECRETS_EXTENSION_TOKEN=${JSON.stringify(value)} is invalid: the token file`,
        ),
        r.stderr,
      );
      assert.ok(r.stderr.includes(why), r.stderr);
    }
  });

  test('pscache get and pscache-get.sh refuse a FIFO within 5 s, sending nothing (exit 3)', async () => {
    const env = {
      PARAMETERS_SECRETS_EXTENSION_TOKEN: `file://${f('fifo')}`,
      PARAMETERS_SECRETS_EXTENSION_HTTP_PORT: '9',
    };
    for (const [cmd, args] of [
      [process.execPath, [BUNDLE, 'get', 'secret', 'x']],
      ['sh', [SCRIPT, 'secret', 'x']],
    ] as const) {
      const r = await runCommand(cmd, [...args], env, { timeoutMs: 5000 });
      assert.equal(r.code, 3, r.stderr);
      assert.match(
        r.stderr,
        /PARAMETERS_SECRETS_EXTENSION_TOKEN="file:\/\/.*fifo" is invalid: the token file .*fifo is (a FIFO|not a regular file)/,
      );
    }
  });

  test('a short token stops serve with the reason; a token file others may write is a WARN line', async () => {
    const short = await runCommand(process.execPath, [BUNDLE, 'serve'], {
      ...region,
      PARAMETERS_SECRETS_EXTENSION_TOKEN: 'a',
    });
    assert.equal(short.code, 2);
    assert.equal(
      short.stderr,
      'pscache: PARAMETERS_SECRETS_EXTENSION_TOKEN=(hidden) is invalid: the token is too short (1 characters): a token must have at least 16, or it can be guessed; make one with `pscache token`\n',
    );
    const open = f('open-token');
    writeFileSync(open, FILE_TOKEN);
    chmodSync(open, 0o666);
    const d = await daemons.start({ PARAMETERS_SECRETS_EXTENSION_TOKEN: `file://${open}` });
    assert.equal((await d.get(secret('ts/app'), { token: FILE_TOKEN })).status, 200);
    const { output } = await daemons.stop(d);
    assert.match(output, new RegExp(`WARN the token file ${open} is writable by others \\(mode 0666\\)`));
  });

  test('a token file its group may write is a warning of the daemon (whoever may write it chooses the token)', () => {
    const grouped = f('group-writable-token');
    writeFileSync(grouped, FILE_TOKEN);
    chmodSync(grouped, 0o660);
    const c = loadConfig({ ...region, PARAMETERS_SECRETS_EXTENSION_TOKEN: `file://${grouped}` });
    assert.equal(c.token, FILE_TOKEN);
    assert.ok(
      c.warnings.some((w) => w.startsWith(`the token file ${grouped} is writable by its group (mode 0660)`)),
      c.warnings.join('\n'),
    );
    chmodSync(grouped, 0o640);
    const quiet = loadConfig({ ...region, PARAMETERS_SECRETS_EXTENSION_TOKEN: `file://${grouped}` });
    assert.ok(!quiet.warnings.some((w) => w.includes('writable')), quiet.warnings.join('\n'));
  });

  test('a token file owned by another user (not root) is a WARN line', {
    skip: isRoot ? false : 'needs root to chown',
  }, async () => {
    const theirs = f('their-token');
    writeFileSync(theirs, FILE_TOKEN);
    chownSync(theirs, 65534, 65534);
    const d = await daemons.start({ PARAMETERS_SECRETS_EXTENSION_TOKEN: `file://${theirs}` });
    const { output } = await daemons.stop(d);
    assert.match(
      output,
      new RegExp(`WARN the token file ${theirs} belongs to uid 65534, neither root nor this process's user`),
    );
  });

  test("a client warns about a token file others may write, not about one of another user (the daemon's)", async () => {
    const open = f('client-open-token');
    writeFileSync(open, FILE_TOKEN);
    chmodSync(open, 0o666);
    const theirs = f('client-their-token');
    writeFileSync(theirs, FILE_TOKEN, { mode: 0o640 });
    if (isRoot) chownSync(theirs, 65534, 65534);
    const warned: string[] = [];
    const onWarning = (w: Error) => warned.push(`${w.name}: ${w.message}`);
    process.on('warning', onWarning);
    try {
      for (let i = 0; i < 2; i++) {
        assert.equal(
          resolveToken({ PARAMETERS_SECRETS_EXTENSION_TOKEN: `file://${open}` }).token,
          FILE_TOKEN,
        );
        assert.equal(
          resolveToken({ PARAMETERS_SECRETS_EXTENSION_TOKEN: `file://${theirs}` }).token,
          FILE_TOKEN,
        );
      }
      await new Promise((r) => setImmediate(r));
    } finally {
      process.off('warning', onWarning);
    }
    assert.deepEqual(warned, [
      `PscacheWarning: the token file ${open} is writable by others (mode 0666): anyone on the host can choose the token; chmod o-w it`,
    ]);
    const sh = await runCommand('sh', [SCRIPT, 'secret', 'x'], {
      PARAMETERS_SECRETS_EXTENSION_TOKEN: `file://${open}`,
      PARAMETERS_SECRETS_EXTENSION_HTTP_PORT: '9',
      PSCACHE_RETRIES: '0',
    });
    assert.match(sh.stderr, /warning: the token file .* is writable by others/);
    const quiet = await runCommand('sh', [SCRIPT, 'secret', 'x'], {
      PARAMETERS_SECRETS_EXTENSION_TOKEN: `file://${theirs}`,
      PARAMETERS_SECRETS_EXTENSION_HTTP_PORT: '9',
      PSCACHE_RETRIES: '0',
    });
    assert.doesNotMatch(quiet.stderr, /warning/);
  });

  test("pscache get reads AWS_TOKEN before the app's AWS_SESSION_TOKEN, as the daemon does", async () => {
    const d = await daemons.start(
      { AWS_TOKEN: FILE_TOKEN },
      {
        env: {
          ...region,
          AWS_ACCESS_KEY_ID: 'AKIAPSCACHETEST00001',
          AWS_SECRET_ACCESS_KEY: 'pscache/test/secret/access/key/never-logged',
          AWS_ENDPOINT_URL: world.emu.url,
        },
      },
    );
    const clientEnv = {
      PARAMETERS_SECRETS_EXTENSION_HTTP_PORT: String(d.port),
      AWS_TOKEN: FILE_TOKEN,
      AWS_SESSION_TOKEN: OTHER_TOKEN,
    };
    const r = await runCommand(process.execPath, [BUNDLE, 'get', 'secret', 'ts/printed'], clientEnv);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'printed-by-the-clients\n');
    const sh = await runCommand('sh', [SCRIPT, 'secret', 'ts/printed'], clientEnv);
    assert.equal(sh.code, 0, sh.stderr);
    assert.equal(sh.stdout, 'printed-by-the-clients\n');
    await daemons.stop(d);
  });
});
