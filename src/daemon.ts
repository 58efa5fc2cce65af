// Wires config -> upstream -> cache -> HTTP server, and stops them in order. Used by `serve` and `dev`.
import { joinLimitMs, waitLimitMs } from './aws/client.ts';
import { partitionRule } from './aws/endpoints.ts';
import { createUpstream, type Upstream } from './aws/index.ts';
import { AwsCallError, type CallObserver } from './aws/types.ts';
import { ItemCache } from './cache/index.ts';
import { Collections } from './collections.ts';
import type { Config } from './config.ts';
import { describeInternal } from './errors.ts';
import { Health, validateCredentials } from './health.ts';
import { createLoader } from './loader/index.ts';
import type { Logger } from './log.ts';
import { Metrics } from './metrics.ts';
import { prefetch, prefetchBudget } from './prefetch.ts';
import type { Held } from './server/hold.ts';
import { PscacheServer } from './server/index.ts';
import { codeCacheStatus } from './start-hooks.ts';
import { VERSION } from './version.ts';

export interface Daemon {
  readonly server: PscacheServer;
  readonly cache: ItemCache;
  readonly upstream: Upstream;
  readonly metrics: Metrics;
  readonly health: Health;
  /** Settles when the prefetch (items, tags, paths) is done (failures are logged, not thrown). */
  readonly prefetched: Promise<void>;
  /** Prefetches again (after a SnapStart restore). */
  prefetch(): Promise<void>;
  /** Stops accepting, answers what is in flight (up to graceMs), logs the summary line. */
  stop(graceMs: number): Promise<void>;
  /** Logs the `serving on port` line (and the configuration at DEBUG), once; see StartOptions.announce. */
  announce(): void;
}

export interface StartOptions {
  /**
   * When the `serving on port` line is written: as soon as the listener is up (default), or, for the
   * Lambda lifecycle, `later`, when it calls announce() once its first event/next is on its way. The first
   * write to stderr sets the stream up (~0.7 ms, measured), and every cold start waits for what comes
   * before the first event/next.
   */
  announce?: 'now' | 'later';
  /** 127.0.0.1:port bound already, with the connections it held (ListenerOptions.adopt). */
  adopt?: Held;
}

export async function startDaemon(config: Config, log: Logger, opts: StartOptions = {}): Promise<Daemon> {
  for (const note of config.notes) log.info(note);
  for (const warning of config.warnings) log.warn(warning);
  const metrics = new Metrics();
  const observer: CallObserver = (e) => {
    metrics.observer(e);
    health.observer(e);
    if (log.enabled('debug')) log.debug('upstream call', { ...e, ms: Math.round(e.ms * 100) / 100 });
  };
  const upstream = createUpstream(config, log, observer);
  const health = new Health(upstream.credentials);
  if (config.validateCredentials) {
    try {
      await validateCredentials(upstream, { ignoreTransientErrors: config.ignoreTransientErrors, log });
    } catch (e) {
      upstream.close();
      throw e;
    }
  }
  const loader = createLoader(upstream, {
    batchWindowMs: config.batchWindowMs,
    crossRegion: config.crossRegion,
    log,
  });
  const cache = new ItemCache({
    enabled: config.cacheEnabled,
    maxItems: config.cacheSize,
    maxBytes: config.cacheMaxBytes,
    ttlMs: config.ttlMs,
    staleIfErrorMs: config.staleIfErrorMs,
    staleWaitMs: config.staleWaitMs,
    loader,
    waitLimitMs: {
      ssm: waitLimitMs(config.timeoutMs.ssm),
      secretsmanager: waitLimitMs(config.timeoutMs.secretsmanager),
    },
    joinLimitMs: {
      ssm: joinLimitMs(config.timeoutMs.ssm),
      secretsmanager: joinLimitMs(config.timeoutMs.secretsmanager),
    },
    onBackgroundError: (e, name) => {
      // Upstream failures of a refresh nobody waits for are routine; a fault of pscache's own never is.
      if (e instanceof AwsCallError) log.debug('background refresh failed', { name, code: e.code });
      else log.error('internal error in a background refresh', describeInternal(e));
    },
  });
  const server = new PscacheServer({
    port: config.port,
    token: config.token,
    tokenHeaders: config.tokenHeaders,
    pathPrefix: config.pathPrefix,
    partition: partitionRule(upstream.region),
    maxInboundConnections: config.maxInboundConnections,
    cache,
    collections: new Collections(cache),
    metrics,
    log,
    version: VERSION,
    ready: () => health.readiness(),
    ...(opts.adopt ? { adopt: opts.adopt } : {}),
  });
  try {
    await server.listen();
  } catch (e) {
    upstream.close();
    throw e;
  }
  let metricsListener: { address: string; close(): Promise<void> } | undefined;
  if (config.metricsAddress) {
    // Loaded only when asked for: most processes never open it.
    const { startMetricsListener } = await import('./server/metrics-listener.ts');
    try {
      metricsListener = await startMetricsListener(config.metricsAddress, () => metrics.render(cache), log);
    } catch (e) {
      await server.close(0);
      upstream.close();
      throw e;
    }
    log.info('metrics only, without the token, on the metrics listener', {
      address: metricsListener.address,
    });
  }
  let announced = false;
  const announce = () => {
    if (announced) return;
    announced = true;
    // Once ::1 is bound too (right after the first request, or 100 ms), so the line lists every address.
    void server.bound().then(() => serving());
  };
  const serving = () => {
    log.info(`pscache ${VERSION} serving on port ${config.port}`, {
      addresses: server.addresses.join(','),
      cache: config.cacheEnabled ? 'on' : 'off',
      token_from: config.tokenSource,
    });
    if (log.enabled('debug')) {
      log.debug('configuration', {
        cache_size: config.cacheSize,
        cache_max_bytes: config.cacheMaxBytes,
        ssm_ttl_ms: config.ttlMs.ssm,
        secretsmanager_ttl_ms: config.ttlMs.secretsmanager,
        ssm_timeout_ms: config.timeoutMs.ssm,
        secretsmanager_timeout_ms: config.timeoutMs.secretsmanager,
        max_connections: config.maxConnections,
        max_outbound_connections: config.maxOutboundConnections,
        max_inbound_connections: config.maxInboundConnections,
        proxy: config.network.proxy?.https?.shown,
        http_proxy: config.network.proxy?.http?.shown,
        no_proxy_entries: config.network.proxy?.noProxy.length,
        ca_bundle: config.network.caBundle?.path,
        code_cache: codeCacheStatus(),
      });
    }
  };
  if (opts.announce !== 'later') announce();
  // Credentials are fetched now rather than at the first miss, so a missing source is a WARN at start
  // (validate_credentials fetched them already). Under SnapStart they would be dropped at the restore.
  if (!config.validateCredentials && !(config.lambda.snapStart && config.lambda.runtimeApi)) {
    void health.checkAtStart(log);
  }
  server.onFatal = (e) => {
    log.error(`${e.message}; stopping`);
    void stop(0).finally(() => process.exit(1));
  };
  // Under SnapStart a prefetch before the snapshot would be thrown away at the first INVOKE (nothing
  // fetched before it may stay cached); the lifecycle runs it then instead.
  const plan = {
    items: config.prefetch,
    tags: config.prefetchTags,
    budget: prefetchBudget(config.cacheEnabled, config.cacheSize, config.prefetchBufferRatio),
    budgetBytes: config.cacheEnabled ? Math.floor(config.cacheMaxBytes * config.prefetchBufferRatio) : 0,
    maxJitterMs: config.prefetchMaxJitterMs,
  };
  const runPrefetch = () => prefetch(plan, { cache, loader, log }).then(() => {});
  const prefetched = config.lambda.snapStart && config.lambda.runtimeApi ? Promise.resolve() : runPrefetch();
  let stopping: Promise<void> | undefined;
  const stop = (graceMs: number): Promise<void> => {
    stopping ??= (async () => {
      await server.close(graceMs);
      await metricsListener?.close();
      upstream.close();
      const s = cache.stats;
      log.info('summary', {
        requests: metrics.answered,
        hits: s.hits,
        misses: s.misses,
        upstream_loads: s.loads,
        upstream_calls: metrics.upstreamAttempts,
        errors: s.errors,
        stale: s.stale,
        evictions: s.evictions,
      });
    })();
    return stopping;
  };
  return {
    server,
    cache,
    upstream,
    metrics,
    health,
    prefetched,
    prefetch: runPrefetch,
    stop,
    announce,
  };
}
