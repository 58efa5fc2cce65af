// Wires config -> upstream -> cache -> HTTP server, and stops them in order. Used by `serve` and `dev`.
import { waitLimitMs } from './aws/client.ts';
import { partitionRule } from './aws/endpoints.ts';
import { createUpstream, type Upstream } from './aws/index.ts';
import { AwsCallError, type CallObserver } from './aws/types.ts';
import { ItemCache } from './cache/index.ts';
import { Collections } from './collections.ts';
import type { Config } from './config.ts';
import { describeInternal } from './errors.ts';
import { createLoader } from './loader/index.ts';
import type { Logger } from './log.ts';
import { Metrics } from './metrics.ts';
import { prefetch, prefetchBudget } from './prefetch.ts';
import { PscacheServer } from './server/index.ts';
import { VERSION } from './version.ts';

export interface Daemon {
  readonly server: PscacheServer;
  readonly cache: ItemCache;
  readonly upstream: Upstream;
  readonly metrics: Metrics;
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
}

export async function startDaemon(config: Config, log: Logger, opts: StartOptions = {}): Promise<Daemon> {
  for (const note of config.notes) log.info(note);
  for (const warning of config.warnings) log.warn(warning);
  const metrics = new Metrics();
  const observer: CallObserver = log.enabled('debug')
    ? (e) => {
        metrics.observer(e);
        log.debug('upstream call', { ...e, ms: Math.round(e.ms * 100) / 100 });
      }
    : metrics.observer;
  const upstream = createUpstream(config, log, observer);
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
    loader,
    waitLimitMs: {
      ssm: waitLimitMs(config.timeoutMs.ssm),
      secretsmanager: waitLimitMs(config.timeoutMs.secretsmanager),
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
  });
  try {
    await server.listen();
  } catch (e) {
    upstream.close();
    throw e;
  }
  let announced = false;
  const announce = () => {
    if (announced) return;
    announced = true;
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
        max_inbound_connections: config.maxInboundConnections,
      });
    }
  };
  if (opts.announce !== 'later') announce();
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
    prefetched,
    prefetch: runPrefetch,
    stop,
    announce,
  };
}
