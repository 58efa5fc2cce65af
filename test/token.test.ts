// `pscache token` through the real bundle: a printed token, a token file made atomically with mode 0600
// (0640 and the group asked for with --group), --if-absent keeping only a file that is safe to keep, clear
// refusals (exit 2), and a daemon that accepts the token from that file.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  copyFileSync,
  linkSync,
  readdirSync,
  readFileSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { before, test } from 'node:test';
import { BUNDLE, type Completed, Daemons, ROOT, runCommand, runPscache, secret } from './helpers/daemon.ts';
import { tempDir } from './helpers/temp.ts';
import { sensitive, startWorld, type World, worldHooks } from './helpers/world.ts';

let world: World;
const daemons = new Daemons(() => world.emu.url);
worldHooks(() => world, daemons);

before(async () => {
  world = await startWorld();
  await world.createSecret('token/app', sensitive('token-test-secret-value'));
});

/** `pscache token ...`, optionally as another user (root only), with a bounded wait. */
/** `pscache token` as this user. (As another user, through runnableByNobody: the checkout may be closed to it.) */
const token = (args: string[]): Promise<Completed> =>
  runCommand(process.execPath, [BUNDLE, 'token', ...args], {});

const TOKEN = /^[A-Za-z0-9_-]{43}$/;
const isRoot = process.getuid?.() === 0;
const NOBODY = 65534;

/** A group other than `gid`, from /etc/group, to prove the file's group is set rather than inherited. */
function otherGroup(gid: number): { name: string; gid: number } | undefined {
  for (const line of readFileSync('/etc/group', 'utf8').split('\n')) {
    const [name, , id] = line.split(':');
    if (name && id && /^\d+$/.test(id) && Number(id) !== gid) return { name, gid: Number(id) };
  }
  return undefined;
}

/** The token file's text, checked: whole, 43 base64url characters, no newline, mode 0600 (0640 with a group). */
function readTokenFile(path: string, mode = 0o600): string {
  const st = statSync(path);
  assert.equal(st.mode & 0o777, mode, `mode is ${(st.mode & 0o777).toString(8)}`);
  const text = readFileSync(path, 'utf8');
  assert.match(text, TOKEN);
  return text;
}

/** Nothing but the token file itself is left in the directory (no temporary file after success or failure). */
const entries = (dir: string) => readdirSync(dir).sort();

test('pscache token prints a fresh 43-character base64url token each time', async () => {
  const a = await token([]);
  const b = await token([]);
  assert.equal(a.code, 0);
  assert.match(a.stdout, /^[A-Za-z0-9_-]{43}\n$/);
  assert.notEqual(a.stdout, b.stdout);
  assert.equal(a.stderr, '');
});

test('--write makes a 0600 file holding the token, and prints its path and the variable, not the token', async () => {
  const dir = tempDir('token');
  const path = join(dir, 'token');
  const r = await token(['--write', path]);
  assert.equal(r.code, 0, r.stderr);
  const text = readTokenFile(path);
  assert.equal(r.stdout, `PARAMETERS_SECRETS_EXTENSION_TOKEN=file://${path}\n`);
  assert.match(r.stderr, new RegExp(`wrote a new token to ${path} \\(mode 0600\\)`));
  assert.ok(!r.stdout.includes(text) && !r.stderr.includes(text), 'the token was printed');
  assert.deepEqual(entries(dir), ['token']);
});

test('--group with the primary group sets the file gid; as root any group is given', async () => {
  const dir = tempDir('token');
  const gid = process.getgid!();
  const r = await token(['--write', join(dir, 'token'), '--group', String(gid)]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(statSync(join(dir, 'token')).gid, gid);
  readTokenFile(join(dir, 'token'), 0o640);
  assert.match(r.stderr, new RegExp(`mode 0640, group ${gid}`));

  // By name, and a group the file would not get by default.
  const other = isRoot ? otherGroup(gid) : undefined;
  if (other) {
    const r2 = await token(['--write', join(dir, 'other'), '--group', other.name]);
    assert.equal(r2.code, 0, r2.stderr);
    assert.equal(statSync(join(dir, 'other')).gid, other.gid);
    readTokenFile(join(dir, 'other'), 0o640);
  }
});

test('a group that does not exist: exit 2 naming it, and no file left behind', async () => {
  const dir = tempDir('token');
  const r = await token(['--write', join(dir, 'token'), '--group', 'no-such-group-pscache']);
  assert.equal(r.code, 2);
  assert.equal(r.stderr, 'pscache: --group "no-such-group-pscache": no such group\n');
  assert.equal(r.stdout, '');
  assert.deepEqual(entries(dir), []);
});

test('an existing file is refused without --force, replaced with it, kept with --if-absent', async () => {
  const dir = tempDir('token');
  const path = join(dir, 'token');
  writeFileSync(path, 'existing-token-kept', { mode: 0o600 });
  const refused = await token(['--write', path]);
  assert.equal(refused.code, 2);
  assert.match(refused.stderr, new RegExp(`${path} already exists; pass --force`));
  assert.equal(readFileSync(path, 'utf8'), 'existing-token-kept');

  const kept = await token(['--write', path, '--if-absent']);
  assert.equal(kept.code, 0);
  assert.equal(kept.stdout, `PARAMETERS_SECRETS_EXTENSION_TOKEN=file://${path}\n`);
  assert.equal(readFileSync(path, 'utf8'), 'existing-token-kept');

  const forced = await token(['--write', path, '--force']);
  assert.equal(forced.code, 0, forced.stderr);
  readTokenFile(path);
  assert.deepEqual(entries(dir), ['token']);
});

test('without --group the file is 0600 whatever the umask, even in a setgid directory', async () => {
  const dir = tempDir('token');
  chmodSync(dir, 0o2775);
  for (const umask of ['077', '000']) {
    const path = join(dir, `token-${umask}`);
    const r = await runCommand(
      'sh',
      ['-c', `umask ${umask} && exec "$0" "$@"`, process.execPath, BUNDLE, 'token', '--write', path],
      {},
    );
    assert.equal(r.code, 0, r.stderr);
    readTokenFile(path, 0o600);
  }
});

test('--if-absent keeps only a regular file with one name, of this user or root, that group and others cannot write nor read (but the --group asked for), holding a usable token', async (t) => {
  const dir = tempDir('token');
  const refused = async (path: string, why: RegExp) => {
    const before = readdirSync(dir).sort();
    const r = await token(['--write', path, '--if-absent']);
    assert.equal(r.code, 2, `${path}: ${r.stderr}`);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, new RegExp(`^pscache: ${path} exists and is not kept \\(--if-absent\\): `));
    assert.match(r.stderr, why);
    assert.match(r.stderr, /; remove it, or pass --force to replace it\n$/);
    assert.deepEqual(readdirSync(dir).sort(), before, 'nothing written');
  };
  const good = join(dir, 'good');
  writeFileSync(good, 'a-kept-token-0123456789', { mode: 0o600 });
  assert.equal((await token(['--write', good, '--if-absent'])).code, 0);

  symlinkSync(good, join(dir, 'link'));
  await refused(join(dir, 'link'), /is a symbolic link/);
  symlinkSync(join(dir, 'nowhere'), join(dir, 'dangling'));
  await refused(join(dir, 'dangling'), /is a symbolic link/);
  execFileSync('mkfifo', [join(dir, 'fifo')]);
  await refused(join(dir, 'fifo'), /is a FIFO: it must be a regular file/);
  for (const mode of [0o620, 0o602, 0o666]) {
    const path = join(dir, `writable-${mode.toString(8)}`);
    writeFileSync(path, 'a-kept-token-0123456789');
    chmodSync(path, mode);
    await refused(path, new RegExp(`group or others may write it \\(mode 0${mode.toString(8)}\\)`));
  }
  for (const mode of [0o604, 0o644]) {
    const path = join(dir, `readable-${mode.toString(8)}`);
    writeFileSync(path, 'a-kept-token-0123456789');
    chmodSync(path, mode);
    await refused(path, new RegExp(`others may read it \\(mode 0${mode.toString(8)}\\)`));
  }
  const groupReadable = join(dir, 'group-readable');
  writeFileSync(groupReadable, 'a-kept-token-0123456789');
  chmodSync(groupReadable, 0o640);
  await refused(groupReadable, /its group may read it \(mode 0640\) and no --group was asked for/);
  // The --group it was written for: kept; another group: refused.
  const gid = statSync(groupReadable).gid;
  const withGroup = await token(['--write', groupReadable, '--if-absent', '--group', String(gid)]);
  assert.equal(withGroup.code, 0, withGroup.stderr);
  const other = await token(['--write', groupReadable, '--if-absent', '--group', String(gid + 1)]);
  assert.equal(other.code, 2, other.stderr);
  assert.match(other.stderr, /its group \(\d+\) may read it \(mode 0640\), not the --group asked for/);
  // A second name for the file (a hard link planted or left in the directory): refused under both.
  const linked = join(dir, 'linked');
  writeFileSync(linked, 'a-kept-token-0123456789', { mode: 0o600 });
  linkSync(linked, join(dir, 'second-name'));
  await refused(linked, /it has 2 hard links/);
  await refused(join(dir, 'second-name'), /it has 2 hard links/);
  writeFileSync(join(dir, 'short'), 'short', { mode: 0o600 });
  await refused(join(dir, 'short'), /too short \(5 characters\)/);
  writeFileSync(join(dir, 'empty'), '', { mode: 0o600 });
  await refused(join(dir, 'empty'), /is empty/);
  if (isRoot) {
    // Planted by another user in a shared directory: that user knows the token.
    const planted = join(dir, 'planted');
    writeFileSync(planted, 'a-planted-token-0123456789', { mode: 0o600 });
    chownSync(planted, NOBODY, NOBODY);
    await refused(planted, /belongs to uid 65534, neither you \(uid 0\) nor root: that user knows the token/);
    // Root's own file, written for another user's group (--group), is kept for that user.
    const shared = tempDir('token');
    chmodSync(shared, 0o777);
    const roots = join(shared, 'root-token');
    writeFileSync(roots, 'a-root-token-0123456789', { mode: 0o640 });
    chownSync(roots, 0, NOBODY);
    const app = runnableByNobody(t);
    if (typeof app === 'string') t.diagnostic(`not run as ${NOBODY}: ${app}`);
    else {
      const kept = await runCommand(
        app.node,
        [app.bundle, 'token', '--write', roots, '--if-absent', '--group', String(NOBODY)],
        {},
        { uid: NOBODY, gid: NOBODY, cwd: dirname(app.bundle) },
      );
      assert.equal(kept.code, 0, kept.stderr);
    }
  }
});

test('a directory that cannot be written: exit 2 naming the directory', async () => {
  const missing = join(tempDir('token'), 'no', 'such');
  const r = await token(['--write', join(missing, 'token')]);
  assert.equal(r.code, 2);
  assert.equal(r.stderr, `pscache: cannot create the token file in ${missing} (ENOENT)\n`);
});

/**
 * What `nobody` needs to run `pscache token`, in a directory it can read: the checkout may be anywhere,
 * a 0700 directory included (a `mktemp -d` clone), and so may the node running the tests. Undefined (with
 * the reason) when even a directory under os.tmpdir() cannot be made readable to that user.
 */
function runnableByNobody(t: { after(fn: () => void): void }): { node: string; bundle: string } | string {
  const app = tempDir('token-app', t);
  chmodSync(app, 0o755);
  for (const f of readdirSync(join(ROOT, 'dist'))) {
    if (f.endsWith('.cjs')) copyFileSync(join(ROOT, 'dist', f), join(app, f));
  }
  // The same node binary: a hard link when it can be one, else a copy.
  const node = join(app, 'node');
  try {
    linkSync(process.execPath, node);
  } catch {
    copyFileSync(process.execPath, node);
    chmodSync(node, 0o755);
  }
  const bundle = join(app, 'pscache.cjs');
  const probe = spawnSync(node, ['-e', `require('fs').accessSync(${JSON.stringify(bundle)})`], {
    uid: NOBODY,
    gid: NOBODY,
    cwd: app,
    encoding: 'utf8',
  });
  if (probe.error || probe.status !== 0) {
    return `user ${NOBODY} cannot read ${app} (is ${tmpdir()} closed to other users?): ${probe.error?.message ?? probe.stderr.trim()}`;
  }
  return { node, bundle };
}

test('as an unprivileged user: a read-only directory and a group it is not in are refused (exit 2)', {
  skip: isRoot ? false : 'needs root to run the command as another user',
}, async (t) => {
  const app = runnableByNobody(t);
  if (typeof app === 'string') {
    t.skip(app);
    return;
  }
  const asNobody = (args: string[]) =>
    runCommand(
      app.node,
      [app.bundle, 'token', ...args],
      {},
      { uid: NOBODY, gid: NOBODY, cwd: dirname(app.bundle) },
    );
  const locked = tempDir('token', t);
  chmodSync(locked, 0o755);
  const denied = await asNobody(['--write', join(locked, 'token')]);
  assert.equal(denied.code, 2, denied.stderr);
  assert.equal(denied.stderr, `pscache: cannot create the token file in ${locked} (EACCES)\n`);

  const open = tempDir('token', t);
  chmodSync(open, 0o777);
  const notMember = await asNobody(['--write', join(open, 'token'), '--group', '0']);
  assert.equal(notMember.code, 2, notMember.stderr);
  assert.match(
    notMember.stderr,
    /^pscache: --group 0: cannot give .* to that group \(EPERM\); run as root or as a member of it\n$/,
  );
  assert.deepEqual(entries(open), []);

  const own = await asNobody(['--write', join(open, 'token'), '--group', String(NOBODY)]);
  assert.equal(own.code, 0, own.stderr);
  assert.equal(statSync(join(open, 'token')).uid, NOBODY);
});

test('bad arguments: exit 2 with one line naming them', async () => {
  const cases: [string[], string][] = [
    [['--group', 'x'], '--group, --force and --if-absent need --write FILE'],
    [['--force'], '--group, --force and --if-absent need --write FILE'],
    [['--write'], '--write needs a value'],
    [['--bogus'], 'unknown argument "--bogus"; allowed: --write, --group, --force, --if-absent'],
    [
      ['--write', '/tmp/x', '--force', '--if-absent'],
      '--force and --if-absent contradict each other: pick one',
    ],
    [
      ['--write', '/tmp/x', '--group', '-x'],
      '--group "-x" is invalid: must be a group name or a numeric group id',
    ],
  ];
  for (const [args, message] of cases) {
    const r = await token(args);
    assert.equal(r.code, 2, args.join(' '));
    assert.equal(r.stderr, `pscache: ${message}\n`);
  }
});

test('help: pscache --help lists token, pscache token --help describes it', async () => {
  const main = await runPscache(['--help'], {});
  assert.match(main.stdout, /pscache token \[--write FILE/);
  const help = await token(['--help']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /--if-absent/);
});

test('a daemon given PARAMETERS_SECRETS_EXTENSION_TOKEN=file://FILE accepts the token written there', async () => {
  const dir = tempDir('token');
  const path = join(dir, 'token');
  const r = await token(['--write', path]);
  assert.equal(r.code, 0, r.stderr);
  const line = r.stdout.trim();
  const value = sensitive(readTokenFile(path));
  const [name, url] = line.split('=') as [string, string];
  const d = await daemons.start({ [name]: url });
  const ok = await d.get(secret('token/app'), { token: value });
  assert.equal(ok.status, 200);
  assert.equal(JSON.parse(ok.body).SecretString, 'token-test-secret-value');
  assert.equal((await d.get(secret('token/app'))).status, 401, 'the test token must no longer work');
});
