// `npm run test:stress`: the suite as a new user meets it, several times in a row, some of them with both
// cores kept busy. Clones this checkout's committed HEAD into a fresh 0700 temporary directory, runs
// `npm ci`, then `npm test` N times, and reports each run's verdict, failing tests, duration, what it left
// in the temporary directory and whether it changed a tracked file. Removes its clone at the end.
//
//   node scripts/test-stress.mjs [--runs N] [--busy even|all|none] [--node 22|24] [--system-tmp] [--keep]
//
//   --runs N      npm test this many times (default 2)
//   --busy WHICH  runs with a CPU burner on every core: even (the 2nd, 4th, ...; default), all, none
//   --node V      run `npm run test:node -- V` (the suite on a pinned Node.js) instead of `npm test`
//   --system-tmp  run with the machine's temporary directory, not one of the stress run's own
//   --keep        keep the clone and the logs (their directory is printed)
//
// By default the runs get a temporary directory of their own (TMPDIR, mode 0755 as /tmp is open to
// other users): whatever is left in it is the suite's. Entries new in the machine's temporary
// directory are reported too (a test writing to /tmp by name), though other processes may have made them.
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
/** A run that takes this long has hung: it is stopped and reported as failed. */
const RUN_TIMEOUT_MS = 20 * 60_000;

function usage(message) {
  process.stderr.write(
    `test:stress: ${message}\nusage: npm run test:stress -- [--runs N] [--busy even|all|none] [--node 22|24] [--system-tmp] [--keep]\n`,
  );
  process.exit(2);
}

const opts = { runs: 2, busy: 'even', node: undefined, keep: false, systemTmp: false };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  const a = argv[i];
  if (a === '--runs') {
    opts.runs = Number(argv[++i]);
    if (!Number.isInteger(opts.runs) || opts.runs < 1 || opts.runs > 50)
      usage('--runs needs a number from 1 to 50');
  } else if (a === '--busy') {
    opts.busy = argv[++i];
    if (!['even', 'all', 'none'].includes(opts.busy)) usage('--busy is even, all or none');
  } else if (a === '--node') {
    opts.node = argv[++i];
    if (!opts.node) usage('--node needs an LTS line (22, 24)');
  } else if (a === '--keep') opts.keep = true;
  else if (a === '--system-tmp') opts.systemTmp = true;
  else usage(`unknown argument ${JSON.stringify(a)}`);
}
const busyRun = (n) => opts.busy === 'all' || (opts.busy === 'even' && n % 2 === 0);

const say = (line) => process.stdout.write(`${line}\n`);
const git = (args, cwd = ROOT) => execFileSync('git', args, { cwd, encoding: 'utf8' }).trim();
const seconds = (ms) => `${(ms / 1000).toFixed(1)} s`;

// ---------------------------------------------------------------------------------------------------
// What is left in the temporary directory

const TMP = os.tmpdir();
const snapshot = (dir) => new Set(fs.readdirSync(dir));
/** Entries of `dir` that were not there before, with a note on what they hold (token or store files...). */
function leftovers(dir, before, own) {
  const out = [];
  for (const name of fs.readdirSync(dir)) {
    if (before.has(name) || own.includes(name)) continue;
    const full = path.join(dir, name);
    let what = '';
    try {
      const st = fs.lstatSync(full);
      if (st.isDirectory()) {
        const inside = fs.readdirSync(full);
        what = ` (${inside.length} entries${inside.length ? `: ${inside.slice(0, 4).join(', ')}${inside.length > 4 ? ', ...' : ''}` : ''})`;
      }
    } catch {
      // gone meanwhile
    }
    out.push(`${full}${what}`);
  }
  return out.sort();
}

// ---------------------------------------------------------------------------------------------------
// Processes: the CPU burner and the runs, always stopped

const children = new Set();
function stopAll() {
  for (const c of children) {
    try {
      process.kill(-c.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  children.clear();
}
process.on('exit', stopAll);
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(signal, () => {
    stopAll();
    process.exit(130);
  });
}

/** One busy loop per core, each in its own process group; returns a function that stops them. */
function startBurner() {
  const n = os.availableParallelism?.() ?? os.cpus().length;
  const burners = Array.from({ length: n }, () => {
    const c = spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore', detached: true });
    children.add(c);
    return c;
  });
  return () => {
    for (const c of burners) {
      try {
        process.kill(-c.pid, 'SIGKILL');
      } catch {
        // already gone
      }
      children.delete(c);
    }
  };
}

/** Runs a command in its own process group, output to `log`; resolves with its exit code (null: timed out). */
function run(cmd, args, { cwd, env, log, timeoutMs }) {
  return new Promise((resolve) => {
    const fd = fs.openSync(log, 'w');
    const c = spawn(cmd, args, { cwd, env, stdio: ['ignore', fd, fd], detached: true });
    fs.closeSync(fd);
    children.add(c);
    const timer = setTimeout(() => {
      try {
        process.kill(-c.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }, timeoutMs);
    c.on('exit', (code, signal) => {
      clearTimeout(timer);
      children.delete(c);
      // Whatever it started and left behind goes with it.
      try {
        process.kill(-c.pid, 'SIGKILL');
      } catch {
        // nothing left
      }
      resolve(signal === 'SIGKILL' && code === null ? null : (code ?? 1));
    });
  });
}

// ---------------------------------------------------------------------------------------------------

const head = git(['rev-parse', 'HEAD']);
const dirty = git(['status', '--porcelain']);
const work = fs.mkdtempSync(path.join(TMP, 'pscache-stress-'));
/** A leftover as reported: tsx's cache of compiled files is tsx's, kept there by design (docs/architecture.md). */
const annotated = (entry) =>
  /\/tsx-\d+(?: \(|$)/.test(entry) ? `${entry}  [tsx's compile cache, by design]` : entry;

/** The runs' TMPDIR, outside `work` (0700): a test running a command as another user needs to reach it. */
const runTmp = opts.systemTmp ? TMP : fs.mkdtempSync(path.join(TMP, 'stress-tmp-'));
if (!opts.systemTmp) fs.chmodSync(runTmp, 0o755);
const own = [path.basename(work), path.basename(runTmp)];
const clone = path.join(work, 'repo');
const startedAll = Date.now();
let failed = false;
try {
  say(`test:stress: ${git(['log', '-1', '--format=%h %s'])}`);
  if (dirty) say('  (this checkout has uncommitted changes: the stress run tests the commit, not them)');
  say(
    `  clone in ${work} (mode ${(fs.statSync(work).mode & 0o777).toString(8)}), ${opts.runs} run(s), ` +
      `${os.availableParallelism?.() ?? os.cpus().length} cores, load average ${os
        .loadavg()
        .map((x) => x.toFixed(2))
        .join(' ')}; other users of this machine make every figure noisy`,
  );
  execFileSync('git', ['clone', '--quiet', '--no-checkout', '--no-hardlinks', ROOT, clone], {
    stdio: 'inherit',
  });
  execFileSync('git', ['checkout', '--quiet', '--detach', head], { cwd: clone, stdio: 'inherit' });

  const env = { ...process.env, TMPDIR: runTmp };
  // Nothing of this checkout's environment leaks into the clone's runs.
  for (const k of Object.keys(env)) if (k.startsWith('npm_') || k === 'INIT_CWD') delete env[k];
  let t = Date.now();
  const ci = await run('npm', ['ci', '--no-audit', '--no-fund'], {
    cwd: clone,
    env,
    log: path.join(work, 'npm-ci.log'),
    timeoutMs: RUN_TIMEOUT_MS,
  });
  say(`  npm ci: ${ci === 0 ? 'ok' : `FAILED (${ci ?? 'timed out'})`} in ${seconds(Date.now() - t)}`);
  if (ci !== 0) {
    failed = true;
    process.stdout.write(fs.readFileSync(path.join(work, 'npm-ci.log'), 'utf8').slice(-4000));
  } else {
    const command = opts.node ? ['run', 'test:node', '--', opts.node] : ['test'];
    const results = [];
    for (let n = 1; n <= opts.runs; n++) {
      const busy = busyRun(n);
      const before = snapshot(TMP);
      const beforeRun = snapshot(runTmp);
      const summaryFile = path.join(work, `summary-${n}.json`);
      const log = path.join(work, `run-${n}.log`);
      const stopBurner = busy ? startBurner() : () => {};
      t = Date.now();
      let code;
      try {
        code = await run('npm', command, {
          cwd: clone,
          env: { ...env, PSCACHE_TEST_SUMMARY: summaryFile },
          log,
          timeoutMs: RUN_TIMEOUT_MS,
        });
      } finally {
        stopBurner();
      }
      const ms = Date.now() - t;
      let summary;
      try {
        summary = JSON.parse(fs.readFileSync(summaryFile, 'utf8'));
      } catch {
        summary = undefined;
      }
      const left = leftovers(TMP, before, own);
      const leftInRun = opts.systemTmp ? [] : leftovers(runTmp, beforeRun, []);
      const changed = git(['status', '--porcelain'], clone);
      // Ours for sure: what is left in the runs' own TMPDIR (with --system-tmp, every new pscache-* entry).
      const ours = opts.systemTmp ? left : leftInRun;
      const ok = code === 0 && ours.every((l) => !path.basename(l).startsWith('pscache-')) && !changed;
      failed ||= !ok;
      results.push({ n, busy, ok, ms });
      say(
        `run ${n}${busy ? ' (both cores busy)' : ''}: ${code === 0 ? 'passed' : code === null ? 'TIMED OUT' : `FAILED (exit ${code})`} in ${seconds(ms)}` +
          (summary
            ? `; ${summary.totals.tests} tests, ${summary.totals.pass} passed, ${summary.totals.fail} failed, ${summary.totals.skipped} skipped`
            : ''),
      );
      for (const f of summary?.failures ?? []) say(`  failed: ${f.file}: ${f.name}\n          ${f.error}`);
      if (code !== 0 && !summary?.failures?.length) {
        const tail = fs.readFileSync(log, 'utf8').split('\n').slice(-30).join('\n');
        say(`  (no test failure recorded; the end of its output:)\n${tail}`);
      }
      if (!opts.systemTmp)
        say(
          `  left in its TMPDIR: ${leftInRun.length ? `\n    ${leftInRun.map(annotated).join('\n    ')}` : 'nothing'}`,
        );
      say(`  new in ${TMP}: ${left.length ? `\n    ${left.join('\n    ')}` : 'nothing'}`);
      if (left.length) say('    (since the run started: other processes on this machine may have made some)');
      say(`  tracked files changed: ${changed ? `\n${changed}` : 'none'}`);
      if (summary) {
        const slow = summary.slowest
          .slice(0, 5)
          .map((s) => `${s.file} "${s.name}" ${seconds(s.ms)}`)
          .join('; ');
        say(`  slowest: ${slow}`);
      }
    }
    say(
      `test:stress: ${results.filter((r) => r.ok).length} of ${results.length} runs clean, ` +
        `${seconds(Date.now() - startedAll)} in all`,
    );
  }
} finally {
  stopAll();
  if (opts.keep) say(`kept: ${work}${opts.systemTmp ? '' : ` and ${runTmp}`}`);
  else {
    fs.rmSync(work, { recursive: true, force: true });
    if (!opts.systemTmp) fs.rmSync(runTmp, { recursive: true, force: true });
  }
}
process.exitCode = failed ? 1 : 0;
