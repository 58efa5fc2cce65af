// The sockets pscache opens to AWS: one keep-alive agent per scheme, shared by every client (each service,
// role and Region), so each endpoint host has one pool whoever signs the requests and one cap bounds them
// all. Proxies (HTTPS_PROXY, HTTP_PROXY, NO_PROXY) and AWS_CA_BUNDLE apply here. node:https, and the proxy
// code when a proxy is set, load on first use.
import type { Agent, ClientRequest, RequestOptions } from 'node:http';
import type { Socket } from 'node:net';
import type { ConnectionOptions, SecureContext } from 'node:tls';
import { nodeHttp, nodeHttps, nodeTls } from '../builtins.ts';
import {
  explainCertificate,
  type NetworkConfig,
  NO_NETWORK_OPTIONS,
  proxyFor,
  proxySecrets,
} from './network.ts';

export interface Transport {
  agent: Agent;
  request(options: RequestOptions): ClientRequest;
}

export interface TransportOptions {
  /** Most sockets open to one endpoint host (PARAMETERS_SECRETS_EXTENSION_MAX_CONNECTIONS). */
  maxConnections: number;
  /** Most sockets open at once over all endpoint hosts of a scheme (..._MAX_OUTBOUND_CONNECTIONS). */
  maxTotal: number;
  network?: NetworkConfig;
}

/** Idle pooled sockets close after this long, so a frozen-and-thawed Lambda rarely meets a dead one. */
const FREE_SOCKET_TIMEOUT_MS = 4000;
/** A proxy that has not answered CONNECT by then is given up on (no attempt lives longer anyway). */
const CONNECT_TIMEOUT_MS = 10_000;

type Scheme = 'http:' | 'https:';

export class Transports {
  private readonly made = new Map<Scheme, Promise<Transport>>();
  private readonly agents: Agent[] = [];
  private readonly network: NetworkConfig;
  /** The proxies' credentials: scrubbed from every message an answer or a failure brings (client.ts). */
  readonly secrets: readonly string[];

  constructor(private readonly opts: TransportOptions) {
    this.network = opts.network ?? NO_NETWORK_OPTIONS;
    this.secrets = proxySecrets(this.network);
  }

  /** The transport for http: or https: endpoints, made on first use. */
  for(protocol: string): Promise<Transport> {
    const scheme: Scheme = protocol === 'https:' ? 'https:' : 'http:';
    let t = this.made.get(scheme);
    if (!t) {
      t = scheme === 'https:' ? this.https() : this.http();
      this.made.set(scheme, t);
    }
    return t;
  }

  /** Sockets open now (in use and idle) and the endpoint pools they are in, over both schemes. */
  get open(): { sockets: number; pools: number } {
    let sockets = 0;
    const pools = new Set<string>();
    for (const a of this.agents) {
      for (const group of [a.sockets, a.freeSockets]) {
        for (const [name, list] of Object.entries(group)) {
          // Destroyed sockets leave the lists on their 'close', a turn later.
          const live = list?.filter((s) => !s.destroyed).length ?? 0;
          if (live === 0) continue;
          sockets += live;
          pools.add(name);
        }
      }
    }
    return { sockets, pools: pools.size };
  }

  /** Closes every socket, in use or idle. For shutdown. */
  destroy(): void {
    for (const a of this.agents) a.destroy();
  }

  private agentOptions() {
    const max = Math.max(1, this.opts.maxConnections);
    return {
      keepAlive: true,
      maxSockets: max,
      maxFreeSockets: max,
      maxTotalSockets: nodeCap(this.opts.maxTotal),
      // Agent `timeout` is the idle timeout of pooled sockets (the agent destroys free sockets on it).
      timeout: FREE_SOCKET_TIMEOUT_MS,
      scheduling: 'lifo' as const,
    };
  }

  private async https(): Promise<Transport> {
    const https = nodeHttps();
    const tls = nodeTls();
    const { caBundle, proxy } = this.network;
    const secureContext = caBundle ? withExtraCa(tls, caBundle.pem) : undefined;
    const tunnel = proxy?.https ? (await import('./proxy.ts')).tunnel : undefined;
    class AwsAgent extends https.Agent {
      override createConnection(options: ConnectionOptions & { host: string; port: number }): Socket {
        const port = Number(options.port) || 443;
        const via = tunnel ? proxyFor(proxy, 'https:', options.host, port) : undefined;
        const socket =
          via && tunnel
            ? tls.connect({
                ...options,
                socket: tunnel({
                  proxy: via,
                  host: options.host,
                  port,
                  secureContext,
                  caBundle,
                  timeoutMs: CONNECT_TIMEOUT_MS,
                }),
              })
            : (
                https.Agent.prototype as unknown as { createConnection(o: unknown): Socket }
              ).createConnection.call(this, options);
        socket.on('error', (e: NodeJS.ErrnoException) => explainCertificate(e, options.host, caBundle));
        return socket;
      }
    }
    const agent = new AwsAgent({ ...this.agentOptions(), ...(secureContext ? { secureContext } : {}) });
    this.agents.push(agent);
    return {
      agent,
      request: (o) => {
        makeRoom(agent, o, 443);
        return https.request(o);
      },
    };
  }

  private async http(): Promise<Transport> {
    const http = nodeHttp();
    const agent = new http.Agent(this.agentOptions());
    this.agents.push(agent);
    const proxy = this.network.proxy;
    return {
      agent,
      request: (o) => {
        const port = Number(o.port) || 80;
        const via = proxyFor(proxy, 'http:', o.hostname ?? 'localhost', port);
        if (!via) {
          makeRoom(agent, o, 80);
          return http.request(o);
        }
        // A plain-http endpoint goes through an http:// proxy in absolute form, as Go and curl send it.
        const headers = { ...(o.headers as Record<string, string>) };
        const host = headers['Host'] ?? `${o.hostname}:${port}`;
        if (via.authorization) headers['Proxy-Authorization'] = via.authorization;
        const routed = {
          ...o,
          hostname: via.hostname,
          port: via.port,
          path: `http://${host}${o.path}`,
          headers,
        };
        makeRoom(agent, routed, 80);
        const req = http.request(routed);
        req.on('error', (e) => {
          if (!e.message.includes(via.shown)) e.message = `the proxy ${via.shown}: ${e.message}`;
        });
        return req;
      },
    };
  }
}

/**
 * The cap as Node's agent is told it. When a socket goes idle while a request for another host waits at
 * the cap, Node keeps the idle one and opens one more for the waiting host (Node 20 to 24): its
 * maxTotalSockets is exceeded by one. Told one less, it never exceeds the cap pscache promises.
 */
const nodeCap = (cap: number): number => Math.max(1, cap - 1);

/** Node's roots (and NODE_EXTRA_CA_CERTS) plus the bundle: one context, made once, for every connection. */
function withExtraCa(tls: typeof import('node:tls'), pem: string): SecureContext {
  const context = tls.createSecureContext();
  const native = (context as SecureContext & { context?: { addCACert?: (ca: string) => void } }).context;
  if (typeof native?.addCACert === 'function') {
    native.addCACert(pem);
    return context;
  }
  return tls.createSecureContext({ ca: [...tls.rootCertificates, pem] });
}

/**
 * At the cap, Node queues a request for a new host until some socket closes, and an idle socket of
 * another host only closes after its idle timeout. Closing one such idle socket now lets the request go
 * at once. Nothing is closed when the host has an idle socket of its own (it is reused) or all are busy.
 */
function makeRoom(agent: Agent, o: RequestOptions, defaultPort: number): void {
  const total = (agent as Agent & { totalSocketCount?: number }).totalSocketCount;
  if (total === undefined || total < agent.maxTotalSockets) return;
  const prefix = `${o.hostname ?? o.host}:${Number(o.port) || defaultPort}:`;
  let victim: Socket | undefined;
  for (const [name, idle] of Object.entries(agent.freeSockets)) {
    if (!idle || idle.length === 0) continue;
    if (name.startsWith(prefix)) return;
    victim ??= idle[0];
  }
  victim?.destroy();
}
