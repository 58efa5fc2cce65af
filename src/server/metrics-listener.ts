// The second listener (PARAMETERS_SECRETS_EXTENSION_METRICS_ADDRESS): GET /metrics only, without the
// token, on an address the operator chose, so that Prometheus can scrape a pod or a host. It serves the
// same Prometheus text as the main /metrics, which holds route and operation names, never a parameter or
// secret name, a value or the token; everything else is 404 and reaches nothing else of pscache. Its
// sockets are the main listener's (listener.ts): the same pipelining cut, cap on answers left unread,
// header and request deadlines, and a connection limit, since this one is meant to be reachable from off
// the host, by anyone, without a token.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '../log.ts';
import { Listener, overLimit, type RequestHandler } from './listener.ts';

/** Scrapers are few: connections beyond this are answered 429 and closed. */
const MAX_CONNECTIONS = 32;
/**
 * Answers left unread over all its connections: a scrape is a few KB, so 8 MB is hundreds of scrapes left
 * hanging; with the main listener's 64 MB, what clients that do not read can hold stays bounded at 72 MB.
 */
const MAX_QUEUED_BYTES = 8 * 1024 * 1024;
const PROMETHEUS = 'text/plain; version=0.0.4; charset=utf-8';

export interface MetricsListener {
  /** `host:port` as bound, for the log. */
  readonly address: string;
  close(): Promise<void>;
}

/** GET /metrics and nothing else; answers at once (nothing waits on upstream). */
class MetricsHandler implements RequestHandler {
  private closing = false;

  constructor(private readonly render: () => string) {}

  handle(req: IncomingMessage, res: ServerResponse): void {
    const path = (req.url ?? '/').split('?')[0];
    const close = { Connection: 'close', 'Retry-After': '1' };
    const [status, type, body, extra] = overLimit(req)
      ? [
          429,
          'application/json',
          `{"__type":"TooManyConnections","message":"more than ${MAX_CONNECTIONS} concurrent connections to the metrics listener; retry shortly"}`,
          close,
        ]
      : this.closing
        ? [503, 'application/json', '{"__type":"ShuttingDown","message":"pscache is shutting down"}', close]
        : path !== '/metrics'
          ? [
              404,
              'application/json',
              '{"__type":"NotFound","message":"this listener serves GET /metrics only"}',
              {},
            ]
          : req.method !== 'GET' && req.method !== 'HEAD'
            ? [
                405,
                'application/json',
                '{"__type":"MethodNotAllowed","message":"only GET and HEAD are allowed"}',
                {},
              ]
            : [200, PROMETHEUS, this.render(), {}];
    const bytes = Buffer.from(body);
    res.writeHead(status, {
      'Content-Type': type,
      'Cache-Control': 'no-store',
      'Content-Length': bytes.length,
      ...extra,
    });
    res.end(req.method === 'HEAD' ? undefined : bytes);
  }

  weight(): number {
    return 1;
  }

  inFlight(): number {
    return 0;
  }

  stopAccepting(): void {
    this.closing = true;
  }

  abandon(): void {}
}

/** Binds `host:port`; rejects with an error naming the setting when it cannot. */
export async function startMetricsListener(
  where: { host: string; port: number },
  render: () => string,
  log: Logger,
): Promise<MetricsListener> {
  const listener = new Listener(
    {
      port: where.port,
      hosts: [where.host],
      maxInboundConnections: MAX_CONNECTIONS,
      maxQueuedBytes: MAX_QUEUED_BYTES,
      log,
    },
    new MetricsHandler(render),
  );
  listener.onFatal = (e) => log.error(`metrics listener: ${e.message}`);
  const shown = where.host.includes(':') ? `[${where.host}]:${where.port}` : `${where.host}:${where.port}`;
  try {
    await listener.listen();
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new Error(
      `PARAMETERS_SECRETS_EXTENSION_METRICS_ADDRESS=${shown}: cannot listen there (${code ?? (e as Error).message})${
        code === 'EADDRINUSE' ? ': the port is in use' : ''
      }`,
    );
  }
  return { address: shown, close: () => listener.close(0) };
}
