// Built-in modules loaded on first use instead of at start-up: node:crypto alone is ~20 internal modules
// and a few ms of every cold start, and `pscache serve` needs it only once a request arrives.

let crypto: typeof import('node:crypto') | undefined;
let os: typeof import('node:os') | undefined;

/**
 * The bundle's own `require` (CommonJS); process.getBuiltinModule (Node.js 20.16) when the sources run
 * as ES modules (tsx). Not node:module's createRequire: node:module brings four more internal modules
 * (~0.2 ms) into every start.
 */
export const nodeCrypto = (): typeof import('node:crypto') => {
  crypto ??= typeof require === 'function' ? require('node:crypto') : process.getBuiltinModule('node:crypto');
  return crypto!;
};

/** node:os, for the host name a role session is named after outside Lambda (Lambda names it by function). */
export const nodeOs = (): typeof import('node:os') => {
  os ??= typeof require === 'function' ? require('node:os') : process.getBuiltinModule('node:os');
  return os!;
};
