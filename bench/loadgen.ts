// Load generator child process (forked by startLoadgen in lib.ts, so it never shares a core's event loop
// with the server it measures): autocannon for keep-alive load, a raw client for a new connection per request.
import { connect } from 'node:net';
import { performance } from 'node:perf_hooks';
import autocannon from 'autocannon';

interface Common {
  port: number;
  headers: Record<string, string>;
  connections: number;
}

/** One job: keep-alive (autocannon), a new TCP connection per request (raw), or rotating names (autocannon). */
export type Job =
  | (Common & { kind: 'keepalive'; path: string; seconds: number })
  | (Common & { kind: 'fresh'; path: string; seconds: number })
  | (Common & {
      kind: 'rotate';
      /**
       * Request n (counted from `first`) is in slot s = n mod `connections`, and asks for name
       * (s · names/connections + ⌊⌊n / connections⌋ / perName⌋) mod names: the requests in flight at any
       * moment are for different names, each slot walks the names on its own, and every name is asked for
       * `perName` times in a row by its slot, the first time a miss.
       */
      pathPrefix: string;
      namePrefix: string;
      names: number;
      perName: number;
      first: number;
      amount: number;
      pipelining: number;
    });

export interface LoadResult {
  /** 2xx answers. */
  ok: number;
  non2xx: number;
  errors: number;
  seconds: number;
  rps: number;
  /** Latency of 2xx answers, ms (request written → whole answer read; for `fresh`, connect included). */
  latency: { p50: number; p75: number; p90: number; p99: number; p999: number; max: number; mean: number };
}

function summary(lat: number[], non2xx: number, errors: number, seconds: number): LoadResult {
  const s = Float64Array.from(lat).sort();
  const at = (p: number) =>
    s.length === 0 ? Number.NaN : s[Math.min(s.length - 1, Math.floor(p * s.length))]!;
  let sum = 0;
  for (const x of s) sum += x;
  return {
    ok: s.length,
    non2xx,
    errors,
    seconds,
    rps: s.length / seconds,
    latency: {
      p50: at(0.5),
      p75: at(0.75),
      p90: at(0.9),
      p99: at(0.99),
      p999: at(0.999),
      max: s.length === 0 ? Number.NaN : s[s.length - 1]!,
      mean: sum / s.length,
    },
  };
}

function runAutocannon(job: Job & { kind: 'keepalive' | 'rotate' }): Promise<LoadResult> {
  const lat: number[] = [];
  let non2xx = 0;
  const opts: Parameters<typeof autocannon>[0] = {
    url: `http://127.0.0.1:${job.port}`,
    connections: job.connections,
    headers: job.headers,
    timeout: 30,
  };
  if (job.kind === 'keepalive') {
    opts.duration = job.seconds;
    opts.requests = [{ method: 'GET', path: job.path }];
  } else {
    let n = job.first;
    const width = String(job.names - 1).length;
    const slots = job.connections;
    const stride = Math.floor(job.names / slots);
    opts.amount = job.amount;
    opts.pipelining = job.pipelining;
    opts.requests = [
      {
        method: 'GET',
        setupRequest: (req) => {
          const k = n++;
          const i = ((k % slots) * stride + Math.floor(Math.floor(k / slots) / job.perName)) % job.names;
          req.path = `${job.pathPrefix}${encodeURIComponent(job.namePrefix + String(i).padStart(width, '0'))}`;
          return req;
        },
      },
    ];
  }
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const instance = autocannon(opts, (err, result) => {
      if (err) return reject(err);
      const seconds = job.kind === 'keepalive' ? job.seconds : (performance.now() - started) / 1000;
      resolve(summary(lat, non2xx, result.errors + result.timeouts, seconds));
    });
    instance.on('response', (_client: unknown, status: number, _bytes: number, ms: number) => {
      if (status >= 200 && status < 300) lat.push(ms);
      else non2xx++;
    });
  });
}

/** One GET on a fresh connection, closed by the server (Connection: close); resolves with the latency. */
function freshOnce(port: number, request: Buffer): Promise<{ status: number; ms: number }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const sock = connect(port, '127.0.0.1');
    sock.setNoDelay(true);
    let head = Buffer.alloc(0);
    let need = -1;
    let got = 0;
    let status = 0;
    let ms = -1;
    sock.once('connect', () => sock.write(request));
    sock.on('data', (d: Buffer) => {
      got += d.length;
      if (need < 0) {
        head = Buffer.concat([head, d]);
        const end = head.indexOf('\r\n\r\n');
        if (end < 0) return;
        const text = head.subarray(0, end).toString('latin1');
        status = Number(text.slice(9, 12));
        const m = /\r\ncontent-length: *(\d+)/i.exec(text);
        need = end + 4 + Number(m?.[1] ?? 0);
      }
      if (ms < 0 && got >= need) ms = performance.now() - t0;
    });
    // The server closes first, so TIME_WAIT stays on its side and the client's ports are not exhausted.
    sock.once('close', () => (ms >= 0 ? resolve({ status, ms }) : reject(new Error('closed early'))));
    sock.once('error', reject);
  });
}

async function runFresh(job: Job & { kind: 'fresh' }): Promise<LoadResult> {
  const lines = [`GET ${job.path} HTTP/1.1`, `Host: 127.0.0.1:${job.port}`, 'Connection: close'];
  for (const [k, v] of Object.entries(job.headers)) lines.push(`${k}: ${v}`);
  const request = Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1');
  const lat: number[] = [];
  let non2xx = 0;
  let errors = 0;
  const started = performance.now();
  const deadline = started + job.seconds * 1000;
  await Promise.all(
    Array.from({ length: job.connections }, async () => {
      while (performance.now() < deadline) {
        try {
          const r = await freshOnce(job.port, request);
          if (r.status >= 200 && r.status < 300) lat.push(r.ms);
          else non2xx++;
        } catch {
          errors++;
          await new Promise((res) => setTimeout(res, 1));
        }
      }
    }),
  );
  return summary(lat, non2xx, errors, (performance.now() - started) / 1000);
}

process.on('message', (msg: { id: number; job: Job }) => {
  const { id, job } = msg;
  const run = job.kind === 'fresh' ? runFresh(job) : runAutocannon(job);
  run.then(
    (result) => process.send!({ id, result }),
    (e: unknown) => process.send!({ id, error: e instanceof Error ? e.message : String(e) }),
  );
});
process.on('disconnect', () => process.exit(0));
