// What a single-item request asks for, its cache key, and how it is loaded from upstream (alone, or
// batched with others that arrive within the batch window).
import type { Upstream } from './aws/index.ts';
import { getSecretValue } from './aws/secretsmanager.ts';
import { getParameter } from './aws/ssm.ts';
import type { WireParameter, WireSecretValue } from './aws/types.ts';
import { Batcher } from './batcher.ts';
import type { Logger } from './log.ts';
import { parameterBody, secretBody } from './shapes.ts';

export interface ParameterRequest {
  service: 'ssm';
  name: string;
  /** At most one selector: the first of version/label in the query string (as the original). */
  version?: string;
  label?: string;
  withDecryption: boolean;
}

export interface SecretRequest {
  service: 'secretsmanager';
  secretId: string;
  versionId?: string;
  versionStage?: string;
}

export type ItemRequest = ParameterRequest | SecretRequest;

// NUL cannot appear in a name (the server rejects control characters), so it separates key parts.
const SEP = '\u0000';

/** service + name/secretId + selector + decryption flag: each combination answers differently. */
export function cacheKey(r: ItemRequest): string {
  if (r.service === 'ssm') {
    const sel = r.version !== undefined ? `v${r.version}` : r.label !== undefined ? `l${r.label}` : '';
    return `ssm${SEP}${r.name}${SEP}${sel}${SEP}${r.withDecryption ? 1 : 0}`;
  }
  return `sm${SEP}${r.secretId}${SEP}${r.versionId ?? ''}${SEP}${r.versionStage ?? ''}`;
}

/**
 * The key of an SSM answer that reads the same with and without decryption (anything but a SecureString):
 * one entry then serves both kinds of request.
 */
export function plainKey(r: ItemRequest): string | undefined {
  if (r.service !== 'ssm') return undefined;
  const sel = r.version !== undefined ? `v${r.version}` : r.label !== undefined ? `l${r.label}` : '';
  return `ssm${SEP}${r.name}${SEP}${sel}${SEP}*`;
}

/** The name a request is about, for DEBUG logs. */
export function itemName(r: ItemRequest): string {
  return r.service === 'ssm' ? r.name : r.secretId;
}

/** A loaded item: the rendered drop-in body. */
export interface Loaded {
  body: Buffer;
  /** The answer does not depend on withDecryption (a String or StringList parameter): store it under plainKey. */
  plain?: boolean;
}

export interface LoadOptions {
  /** Upstream attempts; stale-if-error refetches use 1 and serve the old value on failure. */
  attempts?: number;
}

/** Loads one item from upstream and renders the drop-in response body. */
export type Loader = (r: ItemRequest, opts?: LoadOptions) => Promise<Loaded>;

export function loadedParameter(p: WireParameter): Loaded {
  const body = Buffer.from(parameterBody(p));
  return p.Type === 'SecureString' ? { body } : { body, plain: true };
}

export const loadedSecret = (s: WireSecretValue): Loaded => ({ body: Buffer.from(secretBody(s)) });

/** True when a request may share a batch call: no selector, and a plain name the batch answer echoes. */
export function batchable(r: ItemRequest): boolean {
  if (r.service === 'ssm') {
    return (
      r.version === undefined && r.label === undefined && !r.name.startsWith('arn:') && !r.name.includes(':')
    );
  }
  return r.versionId === undefined && r.versionStage === undefined;
}

export function createLoader(upstream: Upstream, opts: { batchWindowMs: number; log: Logger }): Loader {
  const single: Loader = async (r, o) => {
    const call = o?.attempts !== undefined ? { maxAttempts: o.attempts } : undefined;
    if (r.service === 'ssm') {
      const p = await getParameter(
        upstream.ssm,
        {
          name: r.name,
          ...(r.version !== undefined ? { version: r.version } : {}),
          ...(r.label !== undefined ? { label: r.label } : {}),
          withDecryption: r.withDecryption,
        },
        call,
      );
      return loadedParameter(p);
    }
    const s = await getSecretValue(
      upstream.secretsmanager,
      {
        secretId: r.secretId,
        ...(r.versionId !== undefined ? { versionId: r.versionId } : {}),
        ...(r.versionStage !== undefined ? { versionStage: r.versionStage } : {}),
      },
      call,
    );
    return loadedSecret(s);
  };
  if (opts.batchWindowMs <= 0) return single;
  const batcher = new Batcher(upstream, opts.batchWindowMs, single, opts.log);
  return (r, o) => (o?.attempts === undefined && batchable(r) ? batcher.load(r) : single(r, o));
}
