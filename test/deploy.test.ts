// The deployment files (Dockerfile, deploy/compose.yaml, the ECS task definition, the Kubernetes pod, the
// systemd unit and the EC2 install script): parsed and checked for the facts a sidecar depends on, and
// their commands run for real: the image's entrypoint as PID 1, the Compose entrypoint, the unit's
// ExecStartPre and ExecStart, and the health check one-liner they all share.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { basename, dirname, join, posix } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { HOST_ARCH, LTS, nodeBinary } from '../scripts/node-dist.mjs';
import { loadConfig } from '../src/config.ts';
import {
  BUNDLE,
  Daemons,
  daemonEnv,
  freePort,
  httpGet,
  ROOT,
  runCommand,
  secret,
  TEST_CREDENTIALS,
  TEST_TOKEN,
} from './helpers/daemon.ts';
import { tempDir } from './helpers/temp.ts';
import { sensitive, startWorld, type World, worldHooks } from './helpers/world.ts';

let world: World;
const daemons = new Daemons(() => world.emu.url);
worldHooks(() => world, daemons);

const SECRET_VALUE = sensitive('deploy-test-secret-value');
before(async () => {
  world = await startWorld();
  await world.createSecret('deploy/app', SECRET_VALUE);
});

const started = new Set<ChildProcess>();
after(() => {
  for (const c of started) c.kill('SIGKILL');
});

const text = (rel: string) => readFileSync(join(ROOT, rel), 'utf8');
type Json = Record<string, unknown>;
const obj = (v: unknown, what: string): Json => {
  assert.ok(v !== null && typeof v === 'object' && !Array.isArray(v), `${what} is not an object`);
  return v as Json;
};
const arr = (v: unknown, what: string): unknown[] => {
  assert.ok(Array.isArray(v), `${what} is not a list`);
  return v;
};

const TOKEN_VAR = 'PARAMETERS_SECRETS_EXTENSION_TOKEN';
const SDK_CHAIN = '@aws-sdk/credential-provider-node';

// ---------------------------------------------------------------------------------------------------
// Dockerfile

interface Instruction {
  op: string;
  args: string;
  line: number;
}

/** Instructions with continuation lines joined and comment lines dropped, as Docker reads them. */
function parseDockerfile(source: string): Instruction[] {
  const out: Instruction[] = [];
  let buf = '';
  let start = 0;
  source.split('\n').forEach((raw, i) => {
    const line = raw.trimEnd();
    if (/^\s*#/.test(line) || (buf === '' && line.trim() === '')) return;
    if (buf === '') start = i + 1;
    if (line.endsWith('\\')) {
      buf += `${line.slice(0, -1)} `;
      return;
    }
    buf += line;
    const m = /^\s*(\S+)\s*(.*)$/s.exec(buf)!;
    out.push({ op: m[1]!.toUpperCase(), args: m[2]!.trim(), line: start });
    buf = '';
  });
  assert.equal(buf, '', 'the Dockerfile ends inside a continued line');
  return out;
}

interface Stage {
  base: string;
  name: string | undefined;
  instructions: Instruction[];
}

function stages(instructions: Instruction[]): Stage[] {
  const out: Stage[] = [];
  for (const ins of instructions) {
    if (ins.op === 'FROM') {
      const m = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(ins.args);
      assert.ok(m, `FROM on line ${ins.line} is malformed`);
      out.push({ base: m[1]!, name: m[2], instructions: [] });
    } else {
      assert.ok(out.length > 0, `${ins.op} on line ${ins.line} comes before FROM`);
      out.at(-1)!.instructions.push(ins);
    }
  }
  return out;
}

const DOCKERFILE = parseDockerfile(text('Dockerfile'));
const STAGES = stages(DOCKERFILE);
const FINAL = STAGES.at(-1)!;
const finalOp = (op: string) => FINAL.instructions.filter((i) => i.op === op);

/** The exec-form health check command of the image: ['node', '-e', ONE_LINER]. */
const healthcheck = (): string[] => {
  const [hc] = finalOp('HEALTHCHECK');
  assert.ok(hc, 'the final stage has no HEALTHCHECK');
  const m = /^((?:--[a-z-]+=\S+\s+)*)CMD\s+(\[.*\])$/s.exec(hc.args);
  assert.ok(m, 'HEALTHCHECK is not "[OPTIONS] CMD [exec form]"');
  return JSON.parse(m[2]!) as string[];
};

/** The health check every deployment file uses: a node one-liner that GETs /ping on loopback. */
const PING = (() => {
  const cmd = healthcheck();
  assert.equal(cmd.length, 3);
  assert.deepEqual(cmd.slice(0, 2), ['node', '-e']);
  return cmd[2]!;
})();

/** The same one-liner asking /ready: 0 only when credentials and upstream work (Kubernetes readiness). */
const READY = PING.replace("path:'/ping'", "path:'/ready'");

/** The image's uid, as USER gives it (numeric, so Kubernetes' runAsNonRoot can check it). */
const IMAGE_UID = (() => {
  const users = finalOp('USER');
  assert.equal(users.length, 1, 'the final stage sets USER once');
  const m = /^(\d+)(?::(\d+))?$/.exec(users[0]!.args);
  assert.ok(m, `USER ${users[0]!.args} is not numeric uid[:gid]`);
  return Number(m[1]);
})();

const ENTRYPOINT = (() => {
  const [ep] = finalOp('ENTRYPOINT');
  assert.ok(ep, 'no ENTRYPOINT');
  assert.ok(ep.args.startsWith('['), 'ENTRYPOINT is not in exec form');
  return JSON.parse(ep.args) as string[];
})();

describe('Dockerfile', () => {
  test('valid instructions; two stages on a small base of a supported Node.js LTS (22, 24); no EXPOSE; non-root numeric USER', () => {
    const known = new Set(
      'FROM RUN CMD LABEL EXPOSE ENV ADD COPY ENTRYPOINT VOLUME USER WORKDIR ARG ONBUILD STOPSIGNAL HEALTHCHECK SHELL'.split(
        ' ',
      ),
    );
    for (const i of DOCKERFILE) assert.ok(known.has(i.op), `unknown instruction ${i.op} on line ${i.line}`);
    assert.equal(STAGES.length, 2);
    for (const s of STAGES) assert.match(s.base, /^node:(22|24)-(alpine|slim)$/);
    assert.equal(STAGES[0]!.name, 'build');
    assert.equal(
      DOCKERFILE.filter((i) => i.op === 'EXPOSE').length,
      0,
      'pscache listens on loopback only: nothing to expose',
    );
    assert.ok(IMAGE_UID > 0, 'the image must not run as root');
    assert.ok(
      !/\bnpm (ci|install)\b/.test(
        finalOp('RUN')
          .map((r) => r.args)
          .join('\n'),
      ),
      'the final stage installs nothing',
    );
  });

  test('ENTRYPOINT is the exec form of `pscache serve`; the health check is exec form node, not curl', () => {
    assert.deepEqual(ENTRYPOINT, ['node', '/app/bin/pscache.cjs', 'serve']);
    assert.ok(!PING.includes('curl'));
    assert.match(PING, /\/ping/);
  });

  test('every COPY source exists in the repository or is made by the build stage', () => {
    const ignored = text('.dockerignore')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l !== '' && !l.startsWith('#'));
    assert.ok(
      ignored.includes('node_modules') && ignored.includes('dist'),
      '.dockerignore must keep node_modules and dist out',
    );
    const build = STAGES[0]!;
    const workdir = build.instructions.find((i) => i.op === 'WORKDIR')?.args;
    assert.ok(workdir, 'the build stage sets WORKDIR');
    const runs = build.instructions.filter((i) => i.op === 'RUN').map((i) => i.args);
    /** Paths the build stage's RUN steps make, and the step that makes each. */
    const made: Record<string, RegExp> = {
      dist: /\bnpm run build\b/,
      '/deps': /\bnpm install --prefix \/deps\b/,
    };
    for (const [path, maker] of Object.entries(made)) {
      assert.ok(
        runs.some((r) => maker.test(r)),
        `no RUN in the build stage makes ${path}`,
      );
    }
    const copies = DOCKERFILE.filter((i) => i.op === 'COPY');
    assert.ok(copies.length > 0);
    for (const c of copies) {
      const words = c.args.split(/\s+/);
      const from = words.find((w) => w.startsWith('--from='))?.slice('--from='.length);
      const paths = words.filter((w) => !w.startsWith('--'));
      const sources = paths.slice(0, -1);
      assert.ok(sources.length > 0, `COPY on line ${c.line} has no source`);
      for (const src of sources) {
        if (from === undefined) {
          const rel = posix.normalize(src);
          assert.ok(existsSync(join(ROOT, rel)), `COPY ${src} (line ${c.line}): not in the repository`);
          assert.ok(
            !ignored.includes(rel.split('/')[0]!),
            `COPY ${src} (line ${c.line}) is excluded by .dockerignore`,
          );
          continue;
        }
        assert.equal(from, 'build', `COPY --from=${from} names no stage`);
        if (src.startsWith(`${workdir}/`)) {
          const rel = src.slice(workdir.length + 1);
          const top = rel.split('/')[0]!;
          assert.ok(
            existsSync(join(ROOT, rel)),
            `COPY --from=build ${src}: ${rel} is not in the repository or the build output`,
          );
          assert.ok(
            !ignored.includes(top) || top in made,
            `COPY --from=build ${src}: ${top} never reaches the build stage`,
          );
        } else {
          assert.ok(
            Object.keys(made).some((p) => src.startsWith(`${p}/`)),
            `COPY --from=build ${src}: made by no RUN`,
          );
        }
      }
    }
  });

  test('the build stage installs the SDK credential chain at the version the tests run with', () => {
    const spec = runSync(process.execPath, [join(ROOT, 'deploy/sdk-chain-spec.mjs')]);
    const installed = JSON.parse(text(`node_modules/${SDK_CHAIN}/package.json`)).version as string;
    assert.equal(spec.trim(), `${SDK_CHAIN}@${installed}`);
    const build = STAGES[0]!.instructions
      .filter((i) => i.op === 'RUN')
      .map((i) => i.args)
      .join('\n');
    assert.match(build, /"\$\(node deploy\/sdk-chain-spec\.mjs\)"/);
  });

  test('the ENTRYPOINT, run as PID 1 from the image layout, serves and exits 0 within 1 s of SIGTERM', async (t) => {
    const app = imageLayout();
    const port = await freePort();
    const env = { ...imageEnv(app), ...daemonEnv(world.emu.url, port) };
    const argv = ENTRYPOINT.map((a) => a.replace(/^\/app\//, `${app}/`));
    const pid1 = canUnsharePid();
    const child = launch(
      pid1 ? 'unshare' : process.execPath,
      pid1 ? ['--pid', '--fork', '--kill-child', ...argvWithNode(argv)] : argv.slice(1),
      env,
      !pid1,
    );
    await waitForPing(child, port);
    const target = pid1 ? await childOf(child.pid!) : child.pid!;
    if (pid1) assert.equal(nsPid(target), 1, 'pscache is not PID 1 of its namespace');

    const read = await httpGet(port, secret('deploy/app'));
    assert.equal(read.status, 200);
    assert.equal(JSON.parse(read.body).SecretString, SECRET_VALUE);
    assert.equal((await ping(port)).code, 0, 'the HEALTHCHECK command fails against a healthy daemon');

    const t0 = Date.now();
    process.kill(target, 'SIGTERM');
    // PID 1 gets no default action for SIGTERM: exiting at all (with 0) is pscache handling it.
    const code = await exitCode(child, 5000);
    assert.equal(code, 0);
    t.diagnostic(`PID 1 exited ${Date.now() - t0} ms after SIGTERM`);
    assert.equal((await ping(port)).code, 1, 'the HEALTHCHECK command passes with no daemon');
  });

  test('the image is built with the start cache, made as its user, and the ENTRYPOINT starts from it', {
    skip: !HOST_ARCH && 'no pinned Node.js runs on this machine',
  }, async () => {
    const steps = FINAL.instructions;
    const cacheHome = imageEnv('/app')['XDG_CACHE_HOME'];
    assert.ok(cacheHome?.startsWith('/app/'), 'ENV XDG_CACHE_HOME sets where the cache is kept');
    const user = steps.findIndex((i) => i.op === 'USER');
    const made = steps.findIndex(
      (i) =>
        i.op === 'RUN' &&
        i.args.includes(`mkdir -m 0700 ${cacheHome}`) &&
        i.args.includes(`chown ${IMAGE_UID}`),
    );
    const filled = steps.findIndex(
      (i) => i.op === 'RUN' && /^node \/app\/bin\/warm-start-cache\.cjs$/.test(i.args),
    );
    assert.ok(made >= 0 && made < user, 'the directory is made 0700 for the image user before USER');
    assert.ok(filled > user, 'the cache is filled as the image user, after USER');

    // The same steps on the image layout, with the Node.js line of the image's base.
    const line = /^node:(\d+)-/.exec(FINAL.base)![1]!;
    const node = await nodeBinary(LTS[line]!);
    const app = imageLayout();
    const env = imageEnv(app);
    mkdirSync(env['XDG_CACHE_HOME']!, { mode: 0o700 });
    const build = await runCommand(node, [`${app}/bin/warm-start-cache.cjs`], env, { timeoutMs: 30_000 });
    assert.equal(build.code, 0, build.stderr);
    const port = await freePort();
    const argv = ENTRYPOINT.map((a) => a.replace(/^\/app\//, `${app}/`));
    const child = launch(node, argv.slice(1), {
      ...env,
      ...daemonEnv(world.emu.url, port),
      PARAMETERS_SECRETS_EXTENSION_LOG_LEVEL: 'debug',
    });
    await waitForPing(child, port);
    child.kill('SIGTERM');
    assert.equal(await exitCode(child, 5000), 0);
    assert.match(outputOf(child), /DEBUG configuration .*code_cache=used/);
  });

  test('in the image layout the SDK default chain is found: credentials from a profile file', async (t) => {
    if (!existsSync(join(ROOT, 'node_modules', SDK_CHAIN, 'package.json'))) {
      t.skip(`${SDK_CHAIN} is not installed in this checkout`);
      return;
    }
    const app = imageLayout();
    const home = tempDir('deploy');
    writeFileSync(
      join(home, 'credentials'),
      `[default]\naws_access_key_id = ${TEST_CREDENTIALS.accessKeyId}\naws_secret_access_key = ${TEST_CREDENTIALS.secretAccessKey}\n`,
    );
    writeFileSync(join(home, 'config'), '[default]\nregion = us-east-1\n');
    const port = await freePort();
    const env: Record<string, string> = {
      ...imageEnv(app),
      HOME: home,
      AWS_SHARED_CREDENTIALS_FILE: join(home, 'credentials'),
      AWS_CONFIG_FILE: join(home, 'config'),
      AWS_EC2_METADATA_DISABLED: 'true',
      AWS_REGION: 'us-east-1',
      AWS_ENDPOINT_URL: world.emu.url,
      [TOKEN_VAR]: TEST_TOKEN,
      PARAMETERS_SECRETS_EXTENSION_HTTP_PORT: String(port),
    };
    const child = launch(process.execPath, [`${app}/dist/pscache.cjs`, 'serve'], env);
    await waitForPing(child, port);
    const read = await httpGet(port, secret('deploy/app'));
    assert.equal(read.status, 200, read.body);
    child.kill('SIGTERM');
    assert.equal(await exitCode(child, 5000), 0);
  });
});

/** A directory laid out like the final stage: dist/, bin/, package.json, and node_modules (linked). */
function imageLayout(): string {
  const app = join(tempDir('deploy'), 'app');
  mkdirSync(app);
  for (const p of ['dist', 'bin', 'package.json']) cpSync(join(ROOT, p), join(app, p), { recursive: true });
  symlinkSync(join(ROOT, 'node_modules'), join(app, 'node_modules'));
  return app;
}

/** The Dockerfile's ENV settings of the final stage, with /app standing for the layout `app`. */
function imageEnv(app: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const e of finalOp('ENV')) {
    for (const m of e.args.matchAll(/(\w+)=(\S+)/g)) env[m[1]!] = m[2]!.replace(/^\/app(?=\/|$)/, app);
  }
  return env;
}

const argvWithNode = (argv: string[]) => (argv[0] === 'node' ? [process.execPath, ...argv.slice(1)] : argv);

let unshareWorks: boolean | undefined;
/** A real PID namespace needs root (or user namespaces); without one the test runs a plain child. */
function canUnsharePid(): boolean {
  unshareWorks ??=
    spawnSync('unshare', ['--pid', '--fork', '--kill-child', 'true'], { timeout: 5000 }).status === 0;
  return unshareWorks;
}

function launch(cmd: string, args: string[], env: Record<string, string>, detached = false): ChildProcess {
  const child = spawn(cmd, args, {
    env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached,
  });
  let out = '';
  const keep = (d: Buffer) => {
    out += d.toString();
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  Object.defineProperty(child, 'output', { get: () => out });
  started.add(child);
  child.once('exit', () => started.delete(child));
  return child;
}

const outputOf = (c: ChildProcess) => (c as ChildProcess & { output: string }).output;

async function waitForPing(child: ChildProcess, port: number): Promise<void> {
  const deadline = Date.now() + 15000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`exited early (${child.exitCode}):\n${outputOf(child)}`);
    try {
      if ((await httpGet(port, '/ping', { token: null, timeoutMs: 1000 })).status === 200) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`no /ping answer within 15 s:\n${outputOf(child)}`);
}

function exitCode(child: ChildProcess, timeoutMs: number): Promise<number | null> {
  if (child.exitCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`no exit within ${timeoutMs} ms:\n${outputOf(child)}`)),
      timeoutMs,
    );
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve(code);
    });
  });
}

/** The pid (in our namespace) of `parent`'s child: unshare --fork's pscache. */
async function childOf(parent: number): Promise<number> {
  for (let i = 0; i < 100; i++) {
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      try {
        const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
        if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === parent) return Number(entry);
      } catch {
        // gone meanwhile
      }
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`no child of ${parent}`);
}

/** A process's pid inside its innermost PID namespace. */
const nsPid = (pid: number) =>
  Number(
    /^NSpid:\s+(.*)$/m
      .exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]!
      .split(/\s+/)
      .at(-1),
  );

/** Runs the shared health check one-liner against `port`. */
const ping = (port: number) =>
  runCommand(process.execPath, ['-e', PING], { PARAMETERS_SECRETS_EXTENSION_HTTP_PORT: String(port) });

function runSync(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 10000 });
  assert.equal(r.status, 0, `${cmd} ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

/** KEY=VALUE strings (Compose list form, systemd Environment=) to a record. */
const envList = (list: string[]) =>
  Object.fromEntries(
    list.filter((e) => e.includes('=')).map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]),
  );

// ---------------------------------------------------------------------------------------------------
// Docker Compose

describe('deploy/compose.yaml', () => {
  const compose = obj(parseYaml(text('deploy/compose.yaml')), 'compose.yaml');
  const services = obj(compose['services'], 'services');
  const pscache = obj(services['pscache'], 'services.pscache');
  const app = obj(services['app'], 'services.app');
  const psEnv = envList(arr(pscache['environment'], 'pscache.environment') as string[]);
  const appEnv = envList(arr(app['environment'], 'app.environment') as string[]);
  const tokenUrl = psEnv[TOKEN_VAR]!;
  const tokenPath = new URL(tokenUrl).pathname;
  const entrypoint = arr(pscache['entrypoint'], 'pscache.entrypoint') as string[];

  test('pscache joins the app network namespace and publishes nothing', () => {
    assert.equal(pscache['network_mode'], 'service:app');
    assert.equal(pscache['ports'], undefined);
    assert.equal(pscache['networks'], undefined, 'Compose rejects networks together with network_mode');
    assert.equal(pscache['image'], 'pscache:latest');
  });

  test('the token: one path in both services, on a shared tmpfs volume, written by `pscache token --write`', () => {
    assert.match(tokenUrl, /^file:\/\/\//);
    assert.equal(appEnv[TOKEN_VAR], tokenUrl);
    const mountOf = (svc: Json, name: string) =>
      (arr(svc['volumes'], `${name}.volumes`) as string[])
        .map((v) => v.split(':'))
        .find(([, target]) => target === dirname(tokenPath));
    const psMount = mountOf(pscache, 'pscache');
    const appMount = mountOf(app, 'app');
    assert.ok(psMount && appMount, `both services must mount ${dirname(tokenPath)}`);
    assert.equal(psMount[0], appMount[0]);
    assert.equal(appMount[2], 'ro');
    const volume = obj(obj(compose['volumes'], 'volumes')[psMount[0]!], 'the token volume');
    const opts = obj(volume['driver_opts'], 'driver_opts');
    assert.equal(opts['type'], 'tmpfs');
    const o = String(opts['o']);
    assert.match(o, new RegExp(`(^|,)uid=${IMAGE_UID}(,|$)`), 'the volume belongs to the image user');
    const gid = /(?:^|,)gid=(\d+)/.exec(o)?.[1];
    assert.ok(
      gid && (arr(app['group_add'], 'app.group_add') as string[]).includes(gid),
      'the app is in the token group',
    );
    // Mode 0640 for the token group the app joins: without --group the file would be pscache's alone.
    assert.match(
      entrypoint.join(' '),
      new RegExp(`pscache\\.cjs token --write ${tokenPath} --group ${gid} --if-absent`),
    );
  });

  test('pscache runs read-only, without capabilities or privilege escalation', () => {
    assert.equal(pscache['read_only'], true);
    assert.deepEqual(pscache['cap_drop'], ['ALL']);
    assert.ok((pscache['security_opt'] as string[]).includes('no-new-privileges:true'));
  });

  test('its entrypoint, run for real: writes the token, serves with it, keeps it across a restart', async () => {
    const app = imageLayout();
    const run = tempDir('deploy');
    const port = await freePort();
    // As root any group will do; anyone else may only give the file to a group of their own.
    const group = process.getuid?.() === 0 ? undefined : String(process.getgid!());
    const map = (s: string) => {
      const local = s.replaceAll('/app/', `${app}/`).replaceAll(`${dirname(tokenPath)}/`, `${run}/`);
      return group ? local.replace(/--group 10001\b/, `--group ${group}`) : local;
    };
    const start = async () => {
      const env = {
        ...daemonEnv(world.emu.url, port),
        [TOKEN_VAR]: map(tokenUrl),
        PATH: `${dirname(process.execPath)}:${process.env['PATH'] ?? '/usr/bin:/bin'}`,
      };
      const child = launch(entrypoint[0]!, entrypoint.slice(1).map(map), env);
      await waitForPing(child, port);
      return child;
    };
    const first = await start();
    const token = sensitive(readFileSync(join(run, basename(tokenPath)), 'utf8'));
    assert.equal(statSync(join(run, basename(tokenPath))).mode & 0o777, 0o640);
    assert.equal((await httpGet(port, secret('deploy/app'), { token })).status, 200);
    assert.equal((await httpGet(port, secret('deploy/app'))).status, 401);
    first.kill('SIGTERM');
    assert.equal(await exitCode(first, 5000), 0, 'exec should leave node to take SIGTERM');

    const second = await start();
    assert.equal(readFileSync(join(run, basename(tokenPath)), 'utf8'), token, 'a restart changed the token');
    assert.equal((await httpGet(port, secret('deploy/app'), { token })).status, 200);
    second.kill('SIGTERM');
    assert.equal(await exitCode(second, 5000), 0);
  });
});

// ---------------------------------------------------------------------------------------------------
// ECS

describe('deploy/ecs-task-definition.json', () => {
  const task = obj(JSON.parse(text('deploy/ecs-task-definition.json')), 'task definition');
  const containers = arr(task['containerDefinitions'], 'containerDefinitions').map((c) =>
    obj(c, 'container'),
  );
  const byName = (n: string) => {
    const c = containers.find((x) => x['name'] === n);
    assert.ok(c, `no container ${n}`);
    return c;
  };
  const pscache = byName('pscache');
  const app = byName('app');

  test('awsvpc: the containers share localhost; pscache maps no port and is healthy before the app starts', () => {
    assert.equal(task['networkMode'], 'awsvpc');
    assert.equal(pscache['portMappings'], undefined);
    assert.deepEqual(app['dependsOn'], [{ containerName: 'pscache', condition: 'HEALTHY' }]);
    assert.equal(pscache['essential'], true);
  });

  test('the health check is the shared node one-liner, within ECS limits', () => {
    const hc = obj(pscache['healthCheck'], 'healthCheck');
    assert.deepEqual(hc['command'], ['CMD', 'node', '-e', PING]);
    const within = (k: string, lo: number, hi: number) => {
      const v = hc[k] as number;
      assert.ok(Number.isInteger(v) && v >= lo && v <= hi, `healthCheck.${k}=${v} is outside ${lo}..${hi}`);
    };
    within('interval', 5, 300);
    within('timeout', 2, 60);
    within('retries', 1, 10);
    within('startPeriod', 0, 300);
  });

  test('one token for both containers from `secrets`; a task role for credentials; non-root, read-only pscache', () => {
    const tokenOf = (c: Json) =>
      (arr(c['secrets'], `${String(c['name'])}.secrets`) as Json[]).find((s) => s['name'] === TOKEN_VAR)?.[
        'valueFrom'
      ];
    assert.match(String(tokenOf(pscache)), /^arn:aws:(secretsmanager|ssm):/);
    assert.equal(tokenOf(app), tokenOf(pscache));
    assert.ok(task['executionRoleArn'], 'secrets need an execution role');
    assert.ok(task['taskRoleArn'], 'pscache reads with the task role');
    assert.equal(pscache['user'], `${IMAGE_UID}:${IMAGE_UID}`);
    assert.equal(pscache['readonlyRootFilesystem'], true);
    assert.deepEqual(
      obj(obj(pscache['linuxParameters'], 'linuxParameters')['capabilities'], 'capabilities')['drop'],
      ['ALL'],
    );
  });
});

// ---------------------------------------------------------------------------------------------------
// Kubernetes

describe('deploy/kubernetes-pod.yaml', () => {
  const pod = obj(parseYaml(text('deploy/kubernetes-pod.yaml')), 'pod');
  const spec = obj(pod['spec'], 'spec');
  const inits = arr(spec['initContainers'], 'initContainers').map((c) => obj(c, 'init container'));
  const mains = arr(spec['containers'], 'containers').map((c) => obj(c, 'container'));
  const pscache = inits.find((c) => c['name'] === 'pscache')!;
  const app = mains.find((c) => c['name'] === 'app')!;
  const envOf = (c: Json) =>
    Object.fromEntries((arr(c['env'], 'env') as Json[]).map((e) => [e['name'], e['value']]));

  test('pscache is a native sidecar: an init container with restartPolicy Always', () => {
    assert.equal(pod['kind'], 'Pod');
    assert.ok(pscache, 'no pscache init container');
    assert.equal(pscache['restartPolicy'], 'Always');
    assert.ok(!mains.some((c) => c['name'] === 'pscache'));
    assert.equal(pscache['ports'], undefined);
  });

  test('the token file comes from a Secret mounted where the variable points, in both containers', () => {
    const url = envOf(pscache)[TOKEN_VAR];
    // The kubelet's own file behind its token -> ..data/token link: token files are never links.
    assert.equal(url, 'file:///var/run/pscache/..data/token');
    assert.equal(envOf(app)[TOKEN_VAR], url);
    const path = new URL(String(url)).pathname;
    const mountPath = dirname(dirname(path));
    const mount = (c: Json) =>
      (arr(c['volumeMounts'], 'volumeMounts') as Json[]).find((m) => m['mountPath'] === mountPath);
    const m = mount(pscache);
    assert.ok(m && m['readOnly'] === true);
    assert.equal(mount(app)?.['name'], m['name']);
    const volume = (arr(spec['volumes'], 'volumes') as Json[]).find((v) => v['name'] === m['name'])!;
    const secretVol = obj(volume['secret'], 'secret volume');
    assert.deepEqual(secretVol['items'], [{ key: 'token', path: basename(path) }]);
    assert.equal(secretVol['defaultMode'], 0o440);
    assert.equal(obj(spec['securityContext'], 'securityContext')['fsGroup'], IMAGE_UID);

    // The layout the kubelet writes (AtomicWriter), and the daemon's own reading of the variable in it:
    // the ..data path is read, the link at the top is refused.
    const root = tempDir('k8s-secret');
    {
      const stamp = join(root, '..2025_01_01_00_00_00.000000001');
      mkdirSync(stamp);
      writeFileSync(join(stamp, 'token'), 'a-kubernetes-secret-token-0123', { mode: 0o440 });
      symlinkSync(basename(stamp), join(root, '..data'));
      symlinkSync('..data/token', join(root, 'token'));
      const at = (u: string) => String(u).replace(mountPath, root);
      const env = { AWS_REGION: 'us-east-1' };
      assert.equal(
        loadConfig({ ...env, [TOKEN_VAR]: at(String(url)) }).token,
        'a-kubernetes-secret-token-0123',
      );
      assert.throws(
        () => loadConfig({ ...env, [TOKEN_VAR]: at(`file://${mountPath}/token`) }),
        /is a symbolic link/,
      );
    }
  });

  test('non-root: the pod demands it, pscache runs as the image user, read-only, no capabilities', () => {
    assert.equal(obj(spec['securityContext'], 'pod securityContext')['runAsNonRoot'], true);
    const sc = obj(pscache['securityContext'], 'pscache securityContext');
    assert.equal(sc['runAsUser'], IMAGE_UID);
    assert.equal(sc['allowPrivilegeEscalation'], false);
    assert.equal(sc['readOnlyRootFilesystem'], true);
    assert.deepEqual(obj(sc['capabilities'], 'capabilities')['drop'], ['ALL']);
  });

  test('probes run the node one-liner by exec (an httpGet from the kubelet would not reach loopback)', () => {
    // Started: /ping (alive). Ready: /ready (credentials and upstream work).
    for (const [kind, oneLiner] of [
      ['startupProbe', PING],
      ['readinessProbe', READY],
    ] as const) {
      const probe = obj(pscache[kind], kind);
      assert.equal(probe['httpGet'], undefined);
      assert.equal(probe['tcpSocket'], undefined);
      assert.deepEqual(obj(probe['exec'], `${kind}.exec`)['command'], ['node', '-e', oneLiner]);
    }
  });
});

// ---------------------------------------------------------------------------------------------------
// systemd and the EC2 install script

/** A systemd unit as section -> key -> values (keys may repeat). */
function parseUnit(source: string): Record<string, Record<string, string[]>> {
  const out: Record<string, Record<string, string[]>> = {};
  let section: Record<string, string[]> | undefined;
  for (const raw of source.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const s = /^\[(.+)\]$/.exec(line);
    if (s) {
      section = out[s[1]!] ??= {};
      continue;
    }
    assert.ok(section, `"${line}" is outside any section`);
    const eq = line.indexOf('=');
    assert.ok(eq > 0, `"${line}" is not KEY=VALUE`);
    const key = line.slice(0, eq);
    section[key] = [...(section[key] ?? []), line.slice(eq + 1)];
  }
  return out;
}

describe('deploy/pscache.service and deploy/install-ec2.sh', () => {
  const unit = parseUnit(text('deploy/pscache.service'));
  const svc = unit['Service']!;
  const one = (k: string) => {
    assert.equal(svc[k]?.length, 1, `Service.${k} must be set once`);
    return svc[k]![0]!;
  };
  const environment = envList(svc['Environment'] ?? []);
  const tokenPath = new URL(environment[TOKEN_VAR]!).pathname;
  const PREFIX = '/opt/pscache';
  const installer = text('deploy/install-ec2.sh');

  /** A unit command line with the install paths mapped onto this checkout and `run` for /run/pscache. */
  const mapped = (line: string, run: string, gid: number) =>
    line.split(/\s+/).map((w) =>
      w
        .replace(`${PREFIX}/bin/node`, process.execPath)
        .replace(`${PREFIX}/node_modules/pscache/`, ROOT)
        .replace(`${dirname(tokenPath)}/`, `${run}/`)
        .replace(/^pscache-token$/, String(gid)),
    );

  test('hardened: a system user, no new privileges, read-only system, private /tmp, no home, IP and Unix sockets only', () => {
    assert.equal(one('User'), 'pscache');
    assert.equal(one('SupplementaryGroups'), 'pscache-token');
    const want: Record<string, string> = {
      NoNewPrivileges: 'yes',
      ProtectSystem: 'strict',
      PrivateTmp: 'yes',
      ProtectHome: 'yes',
      RestrictAddressFamilies: 'AF_INET AF_INET6 AF_UNIX',
      RuntimeDirectory: 'pscache',
      CapabilityBoundingSet: '',
    };
    for (const [k, v] of Object.entries(want)) assert.equal(one(k), v, k);
    assert.equal(svc['MemoryDenyWriteExecute'], undefined, 'V8 needs writable executable memory');
    // V8 calls pkey_alloc at start-up, outside @system-service: allowed, and anything else fails softly.
    assert.deepEqual(one('SystemCallFilter').split(' ').sort(), ['@pkey', '@system-service']);
    assert.equal(one('SystemCallErrorNumber'), 'EPERM');
    assert.deepEqual(unit['Install']?.['WantedBy'], ['multi-user.target']);
  });

  test('the token: written under the runtime directory by ExecStartPre, read from the same file by ExecStart', () => {
    assert.equal(dirname(tokenPath), `/run/${one('RuntimeDirectory')}`);
    const pre = one('ExecStartPre').split(/\s+/);
    assert.deepEqual(pre.slice(0, 2), [
      `${PREFIX}/bin/node`,
      `${PREFIX}/node_modules/pscache/bin/pscache.cjs`,
    ]);
    assert.deepEqual(pre.slice(2), [
      'token',
      '--write',
      tokenPath,
      '--group',
      'pscache-token',
      '--if-absent',
    ]);
    assert.deepEqual(one('ExecStart').split(/\s+/), [
      `${PREFIX}/bin/node`,
      `${PREFIX}/node_modules/pscache/bin/pscache.cjs`,
      'serve',
    ]);
    // The compile cache: a directory of the service's own, where the bin looks for it.
    assert.equal(one('CacheDirectory'), 'pscache');
    assert.equal(one('CacheDirectoryMode'), '0700');
    assert.equal(`${environment['XDG_CACHE_HOME']}/pscache`, `/var/cache/${one('CacheDirectory')}`);
  });

  test('systemd-analyze verify accepts the unit, and rates its exposure 2.0 or lower', (t) => {
    if (spawnSync('systemd-analyze', ['--version']).status !== 0) {
      t.skip('systemd-analyze is not installed');
      return;
    }
    // verify checks that the commands exist: point them at this machine's node and bundle.
    const dir = tempDir('deploy');
    mkdirSync(join(dir, 'bin'));
    symlinkSync(process.execPath, join(dir, 'bin', 'node'));
    const file = join(dir, 'pscache.service');
    writeFileSync(
      file,
      text('deploy/pscache.service')
        .replaceAll(`${PREFIX}/bin/node`, join(dir, 'bin', 'node'))
        .replaceAll(`${PREFIX}/node_modules/pscache/`, ROOT),
    );
    const verify = spawnSync('systemd-analyze', ['verify', file], { encoding: 'utf8', timeout: 30000 });
    assert.equal(verify.status, 0, verify.stderr);
    assert.equal(verify.stderr.trim(), '', `systemd-analyze verify warned:\n${verify.stderr}`);
    const security = spawnSync('systemd-analyze', ['security', '--offline=yes', '--threshold=20', file], {
      encoding: 'utf8',
      timeout: 30000,
    });
    assert.equal(security.status, 0, `exposure above 2.0:\n${security.stdout.split('\n').at(-2)}`);
  });

  test('ExecStartPre and ExecStart, run for real: token file 0640 in the token group, kept on restart, accepted', async () => {
    const run = tempDir('deploy');
    const gid = process.getgid!();
    const pre = mapped(one('ExecStartPre'), run, gid);
    const first = await runCommand(pre[0]!, pre.slice(1), {});
    assert.equal(first.code, 0, first.stderr);
    const file = join(run, basename(tokenPath));
    const st = statSync(file);
    assert.equal(st.mode & 0o777, 0o640);
    assert.equal(st.gid, gid);
    const token = sensitive(readFileSync(file, 'utf8'));
    assert.equal(
      (await runCommand(pre[0]!, pre.slice(1), {})).code,
      0,
      'a restart must keep the existing token',
    );
    assert.equal(readFileSync(file, 'utf8'), token);

    const port = await freePort();
    const [node, ...args] = mapped(one('ExecStart'), run, gid);
    const child = launch(node!, args, {
      ...daemonEnv(world.emu.url, port),
      [TOKEN_VAR]: environment[TOKEN_VAR]!.replace(dirname(tokenPath), run),
    });
    await waitForPing(child, port);
    assert.equal((await httpGet(port, secret('deploy/app'), { token })).status, 200);
    child.kill('SIGTERM');
    assert.equal(await exitCode(child, 5000), 0);
  });

  test('install-ec2.sh: POSIX sh syntax, shellcheck clean, and the paths, user and group the unit expects', async (t) => {
    assert.equal((await runCommand('sh', ['-n', 'deploy/install-ec2.sh'], {})).code, 0);
    assert.match(installer, /^#!\/bin\/sh\n/);
    assert.match(installer, new RegExp(`^PREFIX=${PREFIX}$`, 'm'));
    assert.match(installer, /^TOKEN_GROUP=pscache-token$/m);
    assert.match(installer, /useradd --system --gid pscache .* pscache$/m);
    assert.match(installer, /install -m 0644 "\$UNIT" \/etc\/systemd\/system\/pscache\.service/);
    assert.match(installer, /ln -sf "\$NODE" "\$PREFIX\/bin\/node"/);
    // Never the public registry by default: the checkout the script is in.
    assert.match(installer, /^PACKAGE=$/m);
    assert.match(installer, /^\[ -n "\$PACKAGE" \] \|\| PACKAGE=\$\(cd "\$HERE\/\.\." && pwd\)$/m);
    assert.doesNotMatch(installer, /PACKAGE=pscache\b/);
    assert.ok(installer.includes(SDK_CHAIN), 'the installer must install the SDK chain');
    const help = await runCommand('sh', ['deploy/install-ec2.sh', '--help'], {});
    assert.equal(help.code, 0);
    assert.match(help.stdout, /--package SPEC/);
    assert.match(help.stdout, /default: the pscache checkout this script is in/);
    const bad = await runCommand('sh', ['deploy/install-ec2.sh', '--bogus'], {});
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /install-ec2.sh: unknown argument "--bogus"/);
    if (spawnSync('shellcheck', ['--version']).status !== 0) {
      t.diagnostic('shellcheck is not installed: skipped');
      return;
    }
    const sc = await runCommand('shellcheck', ['--shell=sh', 'deploy/install-ec2.sh'], {});
    assert.equal(sc.code, 0, sc.stdout);
  });
});

test('the readiness one-liner exits 0 when pscache is ready, 1 when its credentials fail', async () => {
  assert.notEqual(READY, PING);
  const ready = (port: number) =>
    runCommand(process.execPath, ['-e', READY], { PARAMETERS_SECRETS_EXTENSION_HTTP_PORT: String(port) });
  const d = await daemons.start();
  assert.equal((await ready(d.port)).code, 0);
  const { AWS_ACCESS_KEY_ID: _a, AWS_SECRET_ACCESS_KEY: _s, ...noKeys } = daemonEnv(world.emu.url, 0);
  const blind = await daemons.start(
    {},
    {
      env: {
        ...noKeys,
        AWS_EC2_METADATA_DISABLED: 'true',
        AWS_CONFIG_FILE: '/nonexistent/config',
        AWS_SHARED_CREDENTIALS_FILE: '/nonexistent/credentials',
      },
    },
  );
  assert.equal((await ready(blind.port)).code, 1);
  assert.equal((await ping(blind.port)).code, 0, 'alive all the same');
});

test('the health check one-liner exits 0 against a running daemon and 1 when nothing listens', async () => {
  const d = await daemons.start();
  assert.equal((await ping(d.port)).code, 0);
  assert.equal((await ping(await freePort())).code, 1);
  assert.ok(existsSync(BUNDLE));
});
