// credentials_file_path: the file read at start, looked at every 5 minutes on a fake clock, re-read only
// when its modification time changed, the previous credentials kept when it is missing or malformed, long
// term keys refused, a warning for a mode wider than 0600; then end to end, signing real requests.
import assert from 'node:assert/strict';
import { chmodSync, rmSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type Emulator, startEmulator } from '../packages/emulator/index.ts';
import { CHECK_INTERVAL_MS, FileCredentials, parseCredentialsFile } from '../src/aws/credentials-file.ts';
import { createLogger } from '../src/log.ts';
import { Daemons, daemonEnv, SENSITIVE, secret, TEST_CREDENTIALS } from './helpers/daemon.ts';
import { FakeClock } from './helpers/fake-time.ts';
import { tempDir } from './helpers/temp.ts';

const SECRET_A = 'file-secret-access-key-a-never-logged';
const SECRET_B = 'file-secret-access-key-b-never-logged';
const TOKEN_A = 'file-session-token-a-never-logged';
for (const s of [SECRET_A, SECRET_B, TOKEN_A]) SENSITIVE.add(s);

const file = (id: string, secretKey: string, token: string | undefined, section = 'default') =>
  `# written by a credentials helper\n[${section}]\naws_access_key_id = ${id}\naws_secret_access_key=${secretKey}\n${
    token ? `aws_session_token = ${token}\n` : ''
  }`;

let dir: string;
before(() => {
  dir = tempDir('credfile');
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** A logger that keeps its lines, for asserting what was warned (and that no secret was). */
function recorder() {
  const lines: string[] = [];
  return { lines, log: createLogger('debug', 'text', (l) => lines.push(l)) };
}

/** Writes `text` with a modification time `seconds` after the epoch origin used here (never "now"). */
function write(path: string, text: string, seconds: number, mode = 0o600) {
  writeFileSync(path, text, { mode });
  chmodSync(path, mode);
  utimesSync(path, 1_700_000_000 + seconds, 1_700_000_000 + seconds);
}

describe('parseCredentialsFile', () => {
  test('reads the profile asked for, keys in any case, comments and sub-properties ignored', () => {
    const text = `; top comment\n[other]\naws_access_key_id=OTHER\naws_secret_access_key=x\naws_session_token=y\n\n[default]\nAWS_ACCESS_KEY_ID = AKIDDEFAULT\n  s3 =\n    max_concurrent_requests = 10\naws_secret_access_key = ${SECRET_A}\naws_session_token = ${TOKEN_A}\n`;
    assert.deepEqual(parseCredentialsFile(text, 'default'), {
      accessKeyId: 'AKIDDEFAULT',
      secretAccessKey: SECRET_A,
      sessionToken: TOKEN_A,
    });
    assert.equal(parseCredentialsFile(text, 'other').accessKeyId, 'OTHER');
  });

  test('what is refused, with a reason that holds no key', () => {
    const reason = (text: string, profile = 'default') => {
      try {
        parseCredentialsFile(text, profile);
      } catch (e) {
        return (e as Error).message;
      }
      return 'accepted';
    };
    assert.equal(reason(file('AKID', SECRET_A, TOKEN_A), 'prod'), 'it has no [prod] section');
    assert.match(reason(file('AKID', SECRET_A, undefined)), /long-term keys .* only temporary credentials/);
    assert.match(
      reason('[default]\naws_access_key_id = AKID\n'),
      /lacks aws_access_key_id or aws_secret_access_key/,
    );
    const garbage = reason(`[default]\n${SECRET_A}\n`);
    assert.equal(garbage, 'line 2 is neither [section] nor key = value');
    assert.equal(
      reason(`aws_secret_access_key = ${SECRET_A}\n`),
      'line 1 is neither [section] nor key = value',
    );
  });
});

describe('FileCredentials on a fake clock', () => {
  test('read at start; looked at every 5 minutes; re-read only when the modification time changed', async () => {
    const path = join(dir, 'reload');
    write(path, file('AKIDFIRST', SECRET_A, TOKEN_A), 0);
    const clock = new FakeClock();
    const { lines, log } = recorder();
    const creds = new FileCredentials({ path, log, clock });
    assert.equal((await creds.get()).accessKeyId, 'AKIDFIRST');
    assert.equal(lines.filter((l) => l.includes('credentials read from the credentials file')).length, 1);

    // A new file with the same modification time is not looked into.
    write(path, file('AKIDSAMETIME', SECRET_B, TOKEN_A), 0);
    await clock.advance(CHECK_INTERVAL_MS);
    assert.equal((await creds.get()).accessKeyId, 'AKIDFIRST');

    // Changed: not before the next check, then at it.
    write(path, file('AKIDSECOND', SECRET_B, TOKEN_A), 60);
    await clock.advance(CHECK_INTERVAL_MS - 1);
    assert.equal((await creds.get()).accessKeyId, 'AKIDFIRST');
    await clock.advance(1);
    assert.equal((await creds.get()).accessKeyId, 'AKIDSECOND');
    assert.equal(lines.filter((l) => l.includes('credentials file read again')).length, 1);
    assert.equal(clock.pending, 1, 'one check scheduled at a time');
    creds.stop();
    assert.equal(clock.pending, 0);
    assert.ok(!lines.join('').includes(SECRET_A) && !lines.join('').includes(TOKEN_A));
  });

  test('malformed or missing: the previous credentials stay, a warning each check until it is usable', async () => {
    const path = join(dir, 'broken');
    write(path, file('AKIDGOOD', SECRET_A, TOKEN_A), 0);
    const clock = new FakeClock();
    const { lines, log } = recorder();
    const creds = new FileCredentials({ path, log, clock });
    write(path, `[default]\naws_access_key_id = AKIDHALF\n${SECRET_B}\n`, 60);
    await clock.advance(CHECK_INTERVAL_MS);
    assert.equal((await creds.get()).accessKeyId, 'AKIDGOOD');
    const warned = lines.filter((l) =>
      l.includes('WARN credentials file not usable; keeping the credentials read before'),
    );
    assert.equal(warned.length, 1);
    assert.match(warned[0]!, /problem="line 3 is neither \[section\] nor key = value"/);
    unlinkSync(path);
    await clock.advance(CHECK_INTERVAL_MS);
    assert.equal((await creds.get()).accessKeyId, 'AKIDGOOD');
    assert.match(lines.at(-1)!, /problem="it could not be read \(ENOENT\)"/);
    write(path, file('AKIDBACK', SECRET_B, TOKEN_A), 120);
    await clock.advance(CHECK_INTERVAL_MS);
    assert.equal((await creds.get()).accessKeyId, 'AKIDBACK');
    assert.ok(!lines.join('').includes(SECRET_B), 'a secret reached the log');
    creds.stop();
  });

  test('no usable file at start: reads fail saying why, until the file appears (then at the next check)', async () => {
    const path = join(dir, 'later');
    const clock = new FakeClock();
    const { lines, log } = recorder();
    const creds = new FileCredentials({ path, log, clock });
    const e = (await creds.get().catch((x: unknown) => x)) as Error & { code: string };
    assert.equal(e.code, 'CredentialsProviderError');
    assert.match(
      e.message,
      /credentials file .*later: it could not be read \(ENOENT\); it is read again when it changes/,
    );
    // At start the daemon's one credentials WARN carries the problem (end to end below): DEBUG here.
    assert.match(lines[0]!, /DEBUG no credentials from the credentials file yet/);
    assert.ok(!lines.some((l) => / WARN /.test(l)), lines.join('\n'));
    await clock.advance(CHECK_INTERVAL_MS);
    assert.match(
      lines.at(-1)!,
      /WARN no credentials from the credentials file yet; reads fail until it is usable/,
    );
    write(path, file('AKIDLATE', SECRET_A, TOKEN_A), 0);
    await assert.rejects(creds.get());
    await clock.advance(CHECK_INTERVAL_MS);
    assert.equal((await creds.get()).accessKeyId, 'AKIDLATE');
    creds.stop();
  });

  test('expired credentials (invalidate): the file is looked at at once, not at the next check', async () => {
    const path = join(dir, 'expired');
    write(path, file('AKIDOLD', SECRET_A, TOKEN_A), 0);
    const clock = new FakeClock();
    const creds = new FileCredentials({ path, log: recorder().log, clock });
    assert.equal(creds.invalidate(), false, 'unchanged file: nothing new to sign with');
    write(path, file('AKIDNEW', SECRET_B, TOKEN_A), 60);
    assert.equal(creds.invalidate(), true);
    assert.equal((await creds.get()).accessKeyId, 'AKIDNEW');
    creds.stop();
  });

  test('a mode wider than 0600 is warned about at each read; 0600 and 0400 are not', async () => {
    const clock = new FakeClock();
    for (const [mode, warned] of [
      [0o644, true],
      [0o640, true],
      [0o600, false],
      [0o400, false],
    ] as const) {
      const path = join(dir, `mode-${mode.toString(8)}`);
      write(path, file('AKIDMODE', SECRET_A, TOKEN_A), 0, mode);
      const { lines, log } = recorder();
      const creds = new FileCredentials({ path, log, clock });
      const warning = lines.find((l) => l.includes('can be read by others'));
      assert.equal(warning !== undefined, warned, `mode 0${mode.toString(8)}`);
      if (warning) assert.match(warning, new RegExp(`mode=0${mode.toString(8)}`));
      creds.stop();
    }
  });

  test('a mode made wider after start (chmod, same content, same mtime) is warned at the next look, once', async () => {
    const path = join(dir, 'chmod-later');
    write(path, file('AKIDMODE', SECRET_A, TOKEN_A), 0);
    const { lines, log } = recorder();
    const clock = new FakeClock();
    const creds = new FileCredentials({ path, log, clock });
    const warned = () => lines.filter((l) => /WARN the credentials file can be read by others/.test(l));
    assert.equal(warned().length, 0);
    chmodSync(path, 0o644);
    utimesSync(path, 0, 0);
    await clock.advance(CHECK_INTERVAL_MS);
    assert.equal(warned().length, 1, lines.join('\n'));
    assert.match(warned()[0]!, /mode=0644/);
    await clock.advance(CHECK_INTERVAL_MS);
    assert.equal(warned().length, 1, 'the same mode is not warned at every look');
    chmodSync(path, 0o600);
    await clock.advance(CHECK_INTERVAL_MS);
    chmodSync(path, 0o640);
    await clock.advance(CHECK_INTERVAL_MS);
    assert.equal(warned().length, 2, 'made wide again after being restricted: warned again');
    assert.equal((await creds.get()).accessKeyId, 'AKIDMODE');
    creds.stop();
  });

  test('AWS_PROFILE picks the section', async () => {
    const path = join(dir, 'profiles');
    write(path, `${file('AKIDDEF', SECRET_A, TOKEN_A)}\n${file('AKIDPROD', SECRET_B, TOKEN_A, 'prod')}`, 0);
    const creds = new FileCredentials({ path, profile: 'prod', log: recorder().log, clock: new FakeClock() });
    assert.equal((await creds.get()).accessKeyId, 'AKIDPROD');
    creds.stop();
  });
});

describe('credentials_file_path end to end', () => {
  let emu: Emulator;
  const daemons = new Daemons(() => emu.url);
  const value = 'file-read-secret-value-3310';
  SENSITIVE.add(value);
  before(async () => {
    // The file's keys are temporary ones: the emulator checks their session token too.
    emu = await startEmulator({
      store: { parameters: [], secrets: [{ name: 'file/secret', secretString: value }] },
      credentials: [{ ...TEST_CREDENTIALS, sessionToken: TOKEN_A }],
    });
  });
  after(async () => {
    await daemons.stopAll();
    await emu.close();
  });

  const env = (extra: Record<string, string>) => {
    const { AWS_ACCESS_KEY_ID: _a, AWS_SECRET_ACCESS_KEY: _s, ...rest } = daemonEnv(emu.url, 0);
    return { ...rest, ...extra };
  };

  test('the file is the only source: it wins over AWS_ACCESS_KEY_ID; its keys sign the reads', async () => {
    const path = join(dir, 'e2e');
    write(path, file(TEST_CREDENTIALS.accessKeyId, TEST_CREDENTIALS.secretAccessKey, TOKEN_A), 0);
    const d = await daemons.start(
      {},
      {
        env: env({
          PARAMETERS_SECRETS_EXTENSION_CREDENTIALS_FILE: path,
          AWS_ACCESS_KEY_ID: 'AKIDUNKNOWNTOEMULATOR',
          AWS_SECRET_ACCESS_KEY: 'unknown',
        }),
      },
    );
    const r = await d.get(secret('file/secret'));
    assert.equal(r.status, 200, r.body);
    const out = (await daemons.stop(d)).output;
    assert.match(out, /INFO credentials read from the credentials file path=/);
  });

  test('a credentials file missing at start: exactly one WARN line, naming the file, the problem and the fix', async () => {
    const d = await daemons.start(
      {},
      { env: env({ PARAMETERS_SECRETS_EXTENSION_CREDENTIALS_FILE: join(dir, 'absent-credentials') }) },
    );
    const r = await d.get(secret('file/secret'));
    assert.equal(r.status, 403, r.body);
    const out = (await daemons.stop(d)).output;
    const warns = out.split('\n').filter((l) => / WARN /.test(l));
    assert.equal(warns.length, 1, warns.join('\n'));
    assert.match(
      warns[0]!,
      /WARN no AWS credentials: .*credentials file .*absent-credentials: it could not be read \(ENOENT\)/,
    );
    assert.match(warns[0]!, /fix=/);
  });

  test('from a --config file: validate_credentials (on by default there) is skipped, as in the provider', async () => {
    const path = join(dir, 'e2e-config');
    write(path, file(TEST_CREDENTIALS.accessKeyId, TEST_CREDENTIALS.secretAccessKey, TOKEN_A), 0);
    const toml = join(dir, 'config.toml');
    writeFileSync(toml, `[capabilities.secrets_manager]\ncredentials_file_path = ${JSON.stringify(path)}\n`);
    const d = await daemons.start({}, { env: env({}), args: ['serve', '--config', toml] });
    assert.equal((await d.get(secret('file/secret'))).status, 200);
    const out = (await daemons.stop(d)).output;
    assert.match(out, /INFO validate_credentials skipped: the credentials come from credentials_file_path/);
    assert.equal(emu.calls()['GetCallerIdentity'] ?? 0, 0);
  });
});
