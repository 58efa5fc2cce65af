// What a single-item request asks for, its cache key, and how it is loaded from upstream.
import type { Upstream } from './aws/index.ts';
import { getSecretValue } from './aws/secretsmanager.ts';
import { getParameter } from './aws/ssm.ts';
import type { Service } from './config.ts';
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

/** The name a request is about, for DEBUG logs. */
export function itemName(r: ItemRequest): string {
  return r.service === 'ssm' ? r.name : r.secretId;
}

export const serviceOf = (r: ItemRequest): Service => r.service;

/** Loads one item from upstream and renders the drop-in response body. */
export type Loader = (r: ItemRequest) => Promise<Buffer>;

export function createLoader(upstream: Upstream): Loader {
  return async (r) => {
    if (r.service === 'ssm') {
      const p = await getParameter(upstream.ssm, {
        name: r.name,
        ...(r.version !== undefined ? { version: r.version } : {}),
        ...(r.label !== undefined ? { label: r.label } : {}),
        withDecryption: r.withDecryption,
      });
      return Buffer.from(parameterBody(p));
    }
    const s = await getSecretValue(upstream.secretsmanager, {
      secretId: r.secretId,
      ...(r.versionId !== undefined ? { versionId: r.versionId } : {}),
      ...(r.versionStage !== undefined ? { versionStage: r.versionStage } : {}),
    });
    return Buffer.from(secretBody(s));
  };
}
