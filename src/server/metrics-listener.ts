// The second listener (PARAMETERS_SECRETS_EXTENSION_METRICS_ADDRESS): GET /metrics only, without the
// token, on an address the operator chose, so that Prometheus can scrape a pod or a host. It serves the
// same Prometheus text as the main /metrics, which holds route and operation names, never a parameter or
// secret name, a value or the token; everything else is 404 and reaches nothing else of pscache.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';

/** Scrapers are few: connections beyond this are refused by the kernel's backlog, not served. */
const MAX_CONNECTIONS = 32;
const PROMETHEUS = 'text/plain; version=0.0.4; charset=utf-8';

export interface MetricsListener {
  /** `host:port` as bound, for the log. */
  readonly address: string;
  close(): Promise<void>;
}

/** Binds `host:port`; rejects with an error naming the setting when it cannot. */
export async function startMetricsListener(
  where: { host: string; port: number },
  render: () => string,
): Promise<MetricsListener> {
  const answer = (req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '/').split('?')[0];
    const [status, type, body] =
      path !== '/metrics'
        ? [
            404,
            'application/json',
            '{"__type":"NotFound","message":"this listener serves GET /metrics only"}',
          ]
        : req.method !== 'GET' && req.method !== 'HEAD'
          ? [
              405,
              'application/json',
              '{"__type":"MethodNotAllowed","message":"only GET and HEAD are allowed"}',
            ]
          : [200, PROMETHEUS, render()];
    const bytes = Buffer.from(body);
    res.writeHead(status, {
      'Content-Type': type,
      'Cache-Control': 'no-store',
      'Content-Length': bytes.length,
    });
    res.end(req.method === 'HEAD' ? undefined : bytes);
  };
  const server: Server = createServer({ maxHeaderSize: 8192, keepAliveTimeout: 5000 }, answer);
  server.maxConnections = MAX_CONNECTIONS;
  server.headersTimeout = 5000;
  server.requestTimeout = 10000;
  server.on('clientError', (_err, socket) => socket.destroy());
  const shown = where.host.includes(':') ? `[${where.host}]:${where.port}` : `${where.host}:${where.port}`;
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) =>
      reject(
        new Error(
          `PARAMETERS_SECRETS_EXTENSION_METRICS_ADDRESS=${shown}: cannot listen there (${e.code ?? e.message})${
            e.code === 'EADDRINUSE' ? ': the port is in use' : ''
          }`,
        ),
      ),
    );
    server.listen({ host: where.host, port: where.port, exclusive: true }, () => resolve());
  });
  return {
    address: shown,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
