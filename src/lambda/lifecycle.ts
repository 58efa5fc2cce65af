// The Lambda extension lifecycle (docs/lambda.md, Lifecycle): listener first, then register, then event/next until SHUTDOWN.

import { type Config, ConfigError, lambdaSettings, loadConfig, requireToken } from '../config.ts';
import type { Daemon, StartOptions } from '../daemon.ts';
import { DAEMON_LOADING, loadDaemon } from '../daemon-loader.ts';
import { createLogger, type Logger } from '../log.ts';
import { type Held, holdPort, release } from '../server/hold.ts';
import { codeCacheStatus } from '../start-hooks.ts';
import type { EmfReporter } from './emf.ts';
import {
  type ErrorReport,
  type ExtensionEvent,
  ExtensionsApi,
  ExtensionsApiError,
} from './extensions-api.ts';

type Env = Record<string, string | undefined>;

/**
 * How long in-flight requests may take to finish after SHUTDOWN before they get 503. Lambda gives all
 * external extensions together about 1.7 s; we promise to be gone within 500 ms of the event.
 */
export const SHUTDOWN_GRACE_MS = 250;
/** Kept clear of the event's deadline so the summary line and exit still happen before SIGKILL. */
const DEADLINE_MARGIN_MS = 100;
const EVENTS = ['INVOKE', 'SHUTDOWN'] as const;
/** Not sent by Lambda (it uses SHUTDOWN, then SIGKILL), but a local runner may: stop as on SHUTDOWN. */
const SIGNALS = ['SIGTERM', 'SIGINT'] as const;

export const ERROR_TYPES = {
  config: 'Extension.ConfigInvalid',
  start: 'Extension.InitFailed',
  crash: 'Extension.Crash',
  api: 'Extension.RuntimeApiError',
} as const;

/**
 * Runs pscache as a Lambda extension named `name` (the launcher's file name); resolves to the exit code.
 * Requests are served from the moment the listener is up, through the function's INIT phase.
 */
export async function runExtension(
  env: Env,
  name: string,
  /** startDaemon; a test gives one that fails, to see what a daemon that cannot start does. */
  start: StartDaemon = loadAndStart,
): Promise<number> {
  const settings = lambdaSettings(env);
  const log = createLogger(settings.logLevel, settings.logFormat);
  let api: ExtensionsApi;
  try {
    api = new ExtensionsApi(settings.runtimeApi ?? '');
  } catch (e) {
    log.error(`cannot run as a Lambda extension: ${(e as Error).message}`);
    return 1;
  }

  // A signal before the lifecycle runs (a local runner's; Lambda sends SHUTDOWN): stop as the lifecycle
  // would, exit 0. It ends a register in flight; each step below looks at it once its await returns. These
  // handlers go once the lifecycle's own are in place, or when this returns earlier.
  let signalled = false;
  const onSignal = (sig: NodeJS.Signals) => {
    if (signalled) return;
    signalled = true;
    log.info(`received ${sig}, stopping`);
    api.close();
  };
  for (const sig of SIGNALS) process.on(sig, onSignal);
  try {
    const outcome = await prepare();
    // run() puts the lifecycle's handlers in place before this one's go (finally): no moment without any.
    return typeof outcome === 'number' ? outcome : outcome.run();
  } finally {
    for (const sig of SIGNALS) process.off(sig, onSignal);
  }

  /** Everything up to the lifecycle: the exit code when it ends before, else the lifecycle to run. */
  async function prepare(): Promise<number | Lifecycle> {
    let held: Held | undefined;
    let daemon: Daemon | undefined;
    /** Ends before the lifecycle: the port held let go, or the daemon built stopped. */
    const stopEarly = async (code = 0, graceMs = SHUTDOWN_GRACE_MS): Promise<number> => {
      if (held) await release(held);
      await daemon?.stop(graceMs);
      api.close();
      return code;
    };

    // Configuration problems are reported through init/error, which needs a registration first: so
    // remember the problem, register, then report it.
    let config: Config | undefined;
    let problem: (ErrorReport & { code: number }) | undefined;
    try {
      config = loadConfig(env);
      requireToken(config);
    } catch (e) {
      if (!(e instanceof ConfigError)) throw e;
      problem = { type: ERROR_TYPES.config, message: e.message, code: 2 };
    }
    // The usual start: bind the port now (Lambda starts the function's INIT once every extension has
    // registered, and the function may read from us at once), and build the daemon once the first
    // event/next is on its way, while the function's INIT runs; the connections that come before wait for
    // it. Built before register instead when INIT must wait for it: SnapStart (the restore window opens
    // before the first event/next), a credentials check or a metrics listener (their failures go to
    // init/error), or a port the hold could not bind (the daemon then says why).
    const deferrable =
      config !== undefined &&
      !problem &&
      !settings.snapStart &&
      !config.validateCredentials &&
      !config.metricsAddress;
    held = config && deferrable ? await holdPort(config.port) : undefined;
    if (config && !problem && !held && !signalled) {
      try {
        daemon = await start(config, log, { announce: 'later' });
      } catch (e) {
        problem =
          e instanceof ConfigError
            ? { type: ERROR_TYPES.config, message: e.message, code: 2 }
            : { type: ERROR_TYPES.start, message: e instanceof Error ? e.message : String(e), code: 1 };
      }
    }

    if (signalled) return stopEarly();
    try {
      const reg = await api.register(name, EVENTS);
      log.debug('registered with the Lambda Extensions API', {
        name,
        function: reg.functionName,
        version: reg.functionVersion,
        code_cache: codeCacheStatus(),
        daemon_loading: DAEMON_LOADING,
      });
    } catch (e) {
      if (signalled) return stopEarly();
      log.error(`Lambda Extensions API ${describe(e)}; exiting`, { name });
      return stopEarly(1, 0);
    }
    if (signalled) return stopEarly();

    if (problem || !config || (!daemon && !held)) {
      const report = problem ?? { type: ERROR_TYPES.start, message: 'pscache did not start', code: 1 };
      log.error(report.message);
      try {
        await api.initError(report);
      } catch (e) {
        log.error(`could not report the error to Lambda: ${describe(e)}`);
      }
      api.close();
      return report.code;
    }
    const cfg = config;
    const built = daemon;
    const build = async (): Promise<Started> => {
      const d = built ?? (await start(cfg, log, { announce: 'later', ...(held ? { adopt: held } : {}) }));
      if (!cfg.emf.enabled) return { daemon: d, emf: undefined };
      const { EmfReporter } = await import('./emf.ts');
      return { daemon: d, emf: new EmfReporter(d.metrics, d.cache, cfg.emf) };
    };
    return new Lifecycle(api, build, held, log, settings.snapStart);
  }
}

type StartDaemon = (config: Config, log: Logger, opts?: StartOptions) => Promise<Daemon>;

/** In the Lambda layers, the daemon's modules are loaded here (src/daemon-loader-lazy.ts). */
async function loadAndStart(config: Config, log: Logger, opts?: StartOptions): Promise<Daemon> {
  return (await loadDaemon()).startDaemon(config, log, opts);
}

interface Started {
  daemon: Daemon;
  /** CloudWatch EMF lines: at an INVOKE once the interval has passed, and at the end. */
  emf: EmfReporter | undefined;
}

class Lifecycle {
  private invoked = false;
  private done = false;
  private finish: (code: number) => void = () => {};
  /** Set once build() is called: the daemon, or undefined if it could not start (then we are stopping). */
  private started: Promise<Started | undefined> | undefined;
  /** The exit/error report of a daemon that could not start: a stop waits for it, and exits 1. */
  private failed: Promise<void> | undefined;
  private readonly onCrash = (e: unknown) => this.crash(e);
  private readonly onSignal = (sig: NodeJS.Signals) => {
    if (this.done) return;
    this.log.info(`received ${sig}, stopping`);
    void this.stop(SHUTDOWN_GRACE_MS, 0);
  };

  constructor(
    private readonly api: ExtensionsApi,
    /** Builds the daemon (or hands over the one built before register). */
    private readonly build: () => Promise<Started>,
    /** The port bound before register, when the daemon is built after the first event/next. */
    private readonly held: Held | undefined,
    private readonly log: Logger,
    private readonly snapStart: boolean,
  ) {}

  /** Builds the daemon, once (not once stopping: then undefined). */
  private start(): Promise<Started | undefined> {
    if (this.done && !this.started) return Promise.resolve(undefined);
    this.started ??= this.build().then(
      (s) => {
        s.daemon.server.onFatal = (e) => this.crash(e);
        return s;
      },
      (e: unknown) => {
        const message = `pscache did not start: ${scrubbed(e)}`;
        this.log.error(message);
        // A stop that comes meanwhile (SHUTDOWN, a signal) still sends this and exits 1 (see stop()).
        this.failed = this.api.exitError({ type: ERROR_TYPES.start, message }).catch(() => {});
        void this.failed.finally(() => void this.stop(0, 1));
        return undefined;
      },
    );
    return this.started;
  }

  run(): Promise<number> {
    const exited = new Promise<number>((resolve) => {
      this.finish = resolve;
    });
    // After registration every fatal error is reported through exit/error before we go. These handlers
    // (and the signals') go when the lifecycle ends (stop()): nothing of it outlives it in the process.
    process.on('uncaughtException', this.onCrash);
    process.on('unhandledRejection', this.onCrash);
    // Built before register (SnapStart, a credentials check, a metrics listener): ready now.
    if (!this.held) void this.start();
    // Every signal, not once: a second one during the stop is not the default action (termination).
    for (const sig of SIGNALS) process.on(sig, this.onSignal);
    this.loop().catch((e: unknown) => this.crash(e));
    return exited;
  }

  private async loop(): Promise<void> {
    // Under SnapStart the snapshot is taken once every extension has called event/next: from here on the
    // process may be a restored copy, whose first requests can arrive before we have seen the INVOKE.
    // Until then reads bypass the cache and sign with credentials fetched after they arrived.
    if (this.snapStart) (await this.start())?.daemon.cache.restoreWindow();
    let first = true;
    while (!this.done) {
      let event: ExtensionEvent;
      try {
        // Once the first event/next is handed to the kernel (Lambda may end INIT from then on), the daemon
        // is built, if it was not before register, and its serving line written (the first write to
        // standard error costs ~0.7 ms: not on the cold start's path).
        event = await this.api.next(first ? () => this.afterFirstNext() : undefined);
        first = false;
      } catch (e) {
        if (this.done) return;
        return this.apiFailure(e);
      }
      if (this.done) return;
      if (event.eventType === 'SHUTDOWN') return this.shutdown(event.shutdownReason, event.deadlineMs);
      const started = await this.start();
      if (!started || this.done) return;
      if (!this.invoked) {
        this.invoked = true;
        if (this.snapStart) {
          // Whatever was fetched before the first INVOKE may have been frozen into the snapshot: drop it
          // (loads still in flight never land: clear() raises the cache's floor), and with it the
          // credentials, so that each restored environment fetches its own (a fetch in flight never lands).
          started.daemon.upstream.credentials.invalidate();
          started.daemon.cache.clear();
          this.log.info('first invoke after SnapStart restore: cache cleared');
          void started.daemon.prefetch();
        }
      }
      this.log.debug('invoke', { request_id: event.requestId });
      started.emf?.tick();
    }
  }

  private afterFirstNext(): void {
    void this.start().then((s) => s?.daemon.announce());
  }

  private async shutdown(reason: string, deadlineMs: number | undefined): Promise<void> {
    // The docs print SPINDOWN/TIMEOUT/FAILURE; AWS's own sample extension uses lower case.
    const r = reason.toLowerCase();
    const fields = { reason: r || 'unknown' };
    if (r === 'spindown' || r === '') this.log.info('shutdown', fields);
    else this.log.warn('shutdown', fields);
    const left = deadlineMs === undefined ? SHUTDOWN_GRACE_MS : deadlineMs - Date.now() - DEADLINE_MARGIN_MS;
    await this.stop(Math.max(0, Math.min(SHUTDOWN_GRACE_MS, left)), 0);
  }

  private async apiFailure(e: unknown): Promise<void> {
    this.log.error(`Lambda Extensions API ${describe(e)}; exiting`);
    // 403 and 500 mean the API will take nothing more from us; after garbage, tell Lambda why we go.
    if (e instanceof ExtensionsApiError && e.kind === 'garbage') {
      await this.api.exitError({ type: ERROR_TYPES.api, message: e.message }).catch(() => {});
    }
    await this.stop(0, 1);
  }

  private crash(e: unknown): void {
    if (this.done) return;
    const message = `pscache stopped on an unexpected error: ${scrubbed(e)}`;
    this.log.error(message);
    this.api
      .exitError({ type: ERROR_TYPES.crash, message })
      .catch(() => {})
      .finally(() => void this.stop(0, 1));
  }

  private async stop(graceMs: number, code: number): Promise<void> {
    if (this.done) return;
    this.done = true;
    let exitCode = code;
    try {
      // Not built yet (a signal before the first event/next): nothing to stop but the port held.
      const started = this.started ? await this.started : undefined;
      if (!started && this.held) await release(this.held);
      await started?.daemon.stop(graceMs);
      // After the last answers, so the line counts them.
      started?.emf?.flush();
      // A daemon that could not start: its report goes before the API is closed, and the exit is 1.
      if (this.failed) {
        await this.failed;
        exitCode = Math.max(exitCode, 1);
      }
    } finally {
      this.api.close();
      this.finish(exitCode);
      // The handlers go a turn later: the CLI exits on finish (a microtask), and a SIGTERM that comes with
      // the SHUTDOWN must not find the default action (termination, no exit code) in between. Embedded,
      // the process gets its signals back.
      setImmediate(() => {
        process.off('uncaughtException', this.onCrash);
        process.off('unhandledRejection', this.onCrash);
        for (const sig of SIGNALS) process.off(sig, this.onSignal);
      });
    }
  }
}

function describe(e: unknown): string {
  return e instanceof ExtensionsApiError ? e.message : scrubbed(e);
}

/**
 * An unexpected error for a log line and exit/error: its name, message and where it was thrown. Quoted
 * parts of the message go: JSON.parse and friends quote the input, which could be a secret value.
 */
function scrubbed(e: unknown): string {
  if (!(e instanceof Error)) return typeof e;
  const message = e.message.replace(/"[^"]*"|'[^']*'|`[^`]*`/g, '"..."').slice(0, 300);
  const where = e.stack
    ?.split('\n')
    .find((l) => l.trimStart().startsWith('at '))
    ?.trim();
  return `${e.name}: ${message}${where ? ` (${where})` : ''}`;
}
