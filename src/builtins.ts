// Built-in modules loaded on first use instead of at start-up: node:crypto alone is ~20 internal modules
// and a few ms of every cold start, and `pscache serve` needs it only once a request arrives. node:http
// too, though every start uses it: Node cannot put it in a V8 startup snapshot (its parser binding does
// not serialise), so loading it when the listener is made lets a snapshot of the bundle be built (measured
// by bench/lambda.ts, not shipped: docs/benchmarks.md). node:https and node:tls with the first call to AWS.
// Not `await import()`: a process started from a snapshot has no loader for dynamic import.

/**
 * The bundle's own `require` (CommonJS); process.getBuiltinModule (Node.js 20.16) when the sources run
 * as ES modules (tsx). Not node:module's createRequire: node:module brings four more internal modules
 * (~0.2 ms) into every start.
 */
function builtin<T>(name: string): T {
  return (typeof require === 'function' ? require(name) : process.getBuiltinModule(name)) as T;
}

let crypto: typeof import('node:crypto') | undefined;
let os: typeof import('node:os') | undefined;
let http: typeof import('node:http') | undefined;
let https: typeof import('node:https') | undefined;
let net: typeof import('node:net') | undefined;
let tls: typeof import('node:tls') | undefined;
let url: typeof import('node:url') | undefined;

export const nodeCrypto = (): typeof import('node:crypto') =>
  (crypto ??= builtin<typeof import('node:crypto')>('node:crypto'));

/** node:os, for the host name a role session is named after outside Lambda (Lambda names it by function). */
export const nodeOs = (): typeof import('node:os') => (os ??= builtin<typeof import('node:os')>('node:os'));

export const nodeHttp = (): typeof import('node:http') =>
  (http ??= builtin<typeof import('node:http')>('node:http'));

/** node:net, for the Lambda Extensions API's few calls (src/lambda/http1.ts). */
export const nodeNet = (): typeof import('node:net') =>
  (net ??= builtin<typeof import('node:net')>('node:net'));

export const nodeHttps = (): typeof import('node:https') =>
  (https ??= builtin<typeof import('node:https')>('node:https'));

/** node:url, for the punycode form of an international NO_PROXY entry (a rare entry: not loaded otherwise). */
export const nodeUrl = (): typeof import('node:url') =>
  (url ??= builtin<typeof import('node:url')>('node:url'));

export const nodeTls = (): typeof import('node:tls') =>
  (tls ??= builtin<typeof import('node:tls')>('node:tls'));
