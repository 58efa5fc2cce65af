// Built-in modules loaded on first use instead of at start-up: node:crypto alone is ~20 internal modules
// and a few ms of every cold start, and `pscache serve` needs it only once a request arrives.
import { createRequire } from 'node:module';

declare const __filename: string | undefined;

const load = createRequire(typeof __filename === 'string' ? __filename : import.meta.url);

let crypto: typeof import('node:crypto') | undefined;

export const nodeCrypto = (): typeof import('node:crypto') => {
  crypto ??= load('node:crypto') as typeof import('node:crypto');
  return crypto;
};
