// Wires config -> upstream -> cache -> HTTP server, and stops them in order. Used by `serve` and `dev`.
import { createUpstream, type Upstream } from './aws/index.ts';
import type { CallObserver } from './aws/types.ts';
import { cacheOptionsFrom, ItemCache } from './cache.ts';
import type { Config } from './config.ts';
import { createLoader } from './items.ts';
import type { Logger } from './log.ts';
import { PscacheServer } from './server/index.ts';
import { VERSION } from './version.ts';

export interface Daemon {
  readonly server: PscacheServer;
  readonly cache: ItemCache;
  readonly upstream: Upstream;
  /** Stops accepting, answers what is in flight (up to graceMs), logs the summary line. */
  stop(graceMs: number): Promise<void>;
}

export async function startDaemon(config: Config, log: Logger): Promise<Daemon> {
  for (const note of config.notes) log.info(note);
  const observer: CallObserver | undefined = log.enabled('debug')
    ? (e) => log.debug('upstream call', { ...e, ms: Math.round(e.ms * 100) / 100 })
    : undefined;
  const upstream = createUpstream(config, log, observer);
  const cache = new ItemCache(cacheOptionsFrom(config, createLoader(upstream)));
  const server = new PscacheServer({
    port: config.port,
    token: config.token,
    maxInboundConnections: config.maxInboundConnections,
    cache,
    log,
    version: VERSION,
  });
  try {
    await server.listen();
  } catch (e) {
    upstream.close();
    throw e;
  }
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
  let stopping: Promise<void> | undefined;
  return {
    server,
    cache,
    upstream,
    stop(graceMs) {
      stopping ??= (async () => {
        await server.close(graceMs);
        upstream.close();
        const s = cache.stats;
        log.info('summary', {
          requests: server.stats.requests,
          hits: s.hits,
          misses: s.misses,
          upstream_calls: s.upstreamCalls,
          errors: s.errors,
          evictions: s.evictions,
        });
      })();
      return stopping;
    },
  };
}
