// Route table and query parsing: a request target -> a typed ItemRequest, or an HttpError (404/400).
import { parseRoleArn, ROLE_ARN_FORMAT } from '../arn.ts';
import type { ReadOptions } from '../cache/index.ts';
import { BATCH_REQUEST_LIMIT, type CollectionRequest } from '../collections.ts';
import { DEFAULT_PATH_PREFIX, MAX_TTL_SECONDS } from '../config/settings.ts';
import { badRequest, HttpError } from '../errors.ts';
import type { ItemRequest } from '../items.ts';
import { ROUTE_PATHS, type RoutePath } from './paths.ts';

export const MAX_NAME_LENGTH = 2048;

/** A single-item request and its per-request cache options (refreshNow, ttl). */
export interface ItemQuery {
  item: ItemRequest;
  opts: ReadOptions | undefined;
}

export type Route =
  | { kind: 'ping' }
  | { kind: 'root' }
  | { kind: 'ready' }
  | { kind: 'metrics' }
  | { kind: 'item'; route: string; parse: (q: Query) => ItemQuery }
  | { kind: 'collection'; route: string; parse: (q: Query) => CollectionRequest };

/** Query parameters in order of appearance (order matters: the first of version/label wins). */
export type Query = Array<[string, string]>;

/** Strict query parsing: a malformed percent-escape is a 400, not a silent substitution. */
export function parseQuery(search: string): Query {
  const out: Query = [];
  if (search === '') return out;
  for (const part of search.split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const rawKey = eq === -1 ? part : part.slice(0, eq);
    const rawValue = eq === -1 ? '' : part.slice(eq + 1);
    out.push([decode(rawKey), decode(rawValue)]);
  }
  return out;
}

function decode(s: string): string {
  if (!s.includes('%') && !s.includes('+')) return s;
  try {
    return decodeURIComponent(s.replace(/\+/g, ' '));
  } catch {
    throw badRequest('the query string has a malformed percent-encoding');
  }
}

/** Collects single-valued parameters, rejecting unknown and repeated ones. */
function singleValued(q: Query, allowed: readonly string[]): Map<string, string> {
  const m = new Map<string, string>();
  for (const [k, v] of q) {
    if (!allowed.includes(k)) {
      throw badRequest(`unknown query parameter ${JSON.stringify(k)}; allowed: ${allowed.join(', ')}`);
    }
    if (m.has(k)) throw badRequest(`query parameter ${k} is given more than once`);
    m.set(k, v);
  }
  return m;
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are exactly what is refused
const CONTROL = /[\u0000-\u001f\u007f]/;

/** What every name, id and option value must keep to; `what` opens each message. */
function checkText(value: string, what: string, max: number): void {
  if (value.length > max) throw badRequest(`${what} is longer than ${max} characters`);
  if (CONTROL.test(value)) throw badRequest(`${what} contains control characters`);
}

const EDGE_SPACE = /^\s|\s$/;

/** Parameter names and paths: SSM ignores spaces around a name, so they are trimmed before the key is built. */
function name(raw: string | undefined, param: string): string {
  if (raw === undefined) throw badRequest(`query parameter ${param} is required`);
  const value = raw.replace(/^ +| +$/g, '');
  if (value === '') throw badRequest(`query parameter ${param} must not be empty`);
  checkText(value, `query parameter ${param}`, MAX_NAME_LENGTH);
  return value;
}

/**
 * Secret ids: names and ARNs hold no whitespace, and Secrets Manager does not document trimming any, so an
 * id with whitespace around it is refused rather than guessed at (each spelling would be its own key).
 */
function secretId(raw: string | undefined, param: string): string {
  const value = name(raw, param);
  // name() trimmed spaces (SSM's rule); a secret id had to have none.
  if (value !== raw || EDGE_SPACE.test(value)) {
    throw badRequest(`query parameter ${param} must not begin or end with whitespace`);
  }
  return value;
}

function optional(
  value: string | undefined,
  param: string,
  max: number,
  pattern?: RegExp,
): string | undefined {
  if (value === undefined) return undefined;
  if (value === '') throw badRequest(`query parameter ${param} must not be empty`);
  checkText(value, `query parameter ${param}`, max);
  if (pattern && !pattern.test(value)) throw badRequest(`query parameter ${param} is not valid`);
  return value;
}

function boolean(value: string | undefined, param: string): boolean {
  if (value === undefined) return false;
  const t = value.toLowerCase();
  if (t === 'true') return true;
  if (t === 'false') return false;
  throw badRequest(`query parameter ${param} must be true or false`);
}

/** refreshNow and ttl, taken by every single-item route; roleArn, by every route that reads. */
const CACHE_PARAMS = ['refreshNow', 'ttl', 'roleArn'] as const;

/** `roleArn=`: the read is made with credentials from AssumeRole on this role. */
function role(m: Map<string, string>): { roleArn?: string } {
  const v = m.get('roleArn');
  if (v === undefined) return {};
  if (!parseRoleArn(v)) throw badRequest(`query parameter roleArn must be ${ROLE_ARN_FORMAT}`);
  return { roleArn: v };
}

function cacheOptions(m: Map<string, string>): ReadOptions | undefined {
  const refresh = m.has('refreshNow') ? boolean(m.get('refreshNow'), 'refreshNow') : false;
  const ttl = m.get('ttl');
  if (ttl !== undefined && (!/^\d{1,6}$/.test(ttl) || Number(ttl) > MAX_TTL_SECONDS)) {
    throw badRequest(`query parameter ttl must be a whole number of seconds from 0 to ${MAX_TTL_SECONDS}`);
  }
  if (!refresh && ttl === undefined) return undefined;
  return { ...(refresh ? { refresh } : {}), ...(ttl !== undefined ? { ttlMs: Number(ttl) * 1000 } : {}) };
}

const SSM_PARAMS = ['name', 'version', 'label', 'withDecryption', ...CACHE_PARAMS] as const;

function parseParameter(q: Query): ItemQuery {
  const m = singleValued(q, SSM_PARAMS);
  // Both version and label: the one placed first in the query string wins (documented original behaviour).
  let selector: 'version' | 'label' | undefined;
  for (const [k] of q) {
    if (k === 'version' || k === 'label') {
      selector = k;
      break;
    }
  }
  const version =
    selector === 'version'
      ? optional(m.get('version'), 'version', 19, /^[1-9][0-9]*$/) // a positive whole number
      : undefined;
  if (selector === 'version' && version !== undefined && !Number.isSafeInteger(Number(version))) {
    throw badRequest('query parameter version is not valid');
  }
  const label = selector === 'label' ? optional(m.get('label'), 'label', 100) : undefined;
  return {
    item: {
      service: 'ssm',
      name: name(m.get('name'), 'name'),
      ...(version !== undefined ? { version } : {}),
      ...(label !== undefined ? { label } : {}),
      withDecryption: boolean(m.get('withDecryption'), 'withDecryption'),
      ...role(m),
    },
    opts: cacheOptions(m),
  };
}

/** What a secret read takes besides its id, on every secret route (query or path style). */
const SECRET_OPTIONS = ['versionId', 'versionStage', ...CACHE_PARAMS] as const;
const SECRET_PARAMS = ['secretId', ...SECRET_OPTIONS] as const;

function secretRequest(secretId: string, m: Map<string, string>): ItemQuery {
  const versionId = optional(m.get('versionId'), 'versionId', 64);
  const versionStage = optional(m.get('versionStage'), 'versionStage', 256);
  return {
    item: {
      service: 'secretsmanager',
      secretId,
      ...(versionId !== undefined ? { versionId } : {}),
      ...(versionStage !== undefined ? { versionStage } : {}),
      ...role(m),
    },
    opts: cacheOptions(m),
  };
}

function parseSecret(q: Query): ItemQuery {
  const m = singleValued(q, SECRET_PARAMS);
  return secretRequest(secretId(m.get('secretId'), 'secretId'), m);
}

/** The article's alias takes `name` (or `secretId`), never both. */
function parseSecretAlias(q: Query): ItemQuery {
  const m = singleValued(q, ['name', ...SECRET_PARAMS]);
  if (m.has('name') && m.has('secretId')) throw badRequest('give either name or secretId, not both');
  const id = m.has('name') ? secretId(m.get('name'), 'name') : secretId(m.get('secretId'), 'secretId');
  return secretRequest(id, m);
}

/**
 * The Workload Credentials Provider's path-style read: PREFIX + the secret id, URL-decoded strictly (a
 * malformed escape is a 400, `+` stays `+`). Same ItemRequest as /secretsmanager/get, so the same cache entry.
 */
function parseSecretPath(rawId: string, q: Query): ItemQuery {
  let id: string;
  try {
    id = decodeURIComponent(rawId);
  } catch {
    throw badRequest('the secret id in the path has a malformed percent-encoding');
  }
  if (id === '') throw badRequest('the path must name a secret after the prefix');
  checkText(id, 'the secret id', MAX_NAME_LENGTH);
  if (EDGE_SPACE.test(id)) throw badRequest('the secret id must not begin or end with whitespace');
  return secretRequest(id, singleValued(q, SECRET_OPTIONS));
}

/** Repeated `param` values (1..BATCH_REQUEST_LIMIT), each checked by `check`, plus the single-valued `others`. */
function repeated(
  q: Query,
  param: string,
  others: readonly string[],
  check: (value: string, param: string) => string,
): { values: string[]; rest: Map<string, string> } {
  const values: string[] = [];
  const rest: Query = [];
  for (const entry of q) {
    if (entry[0] === param) values.push(check(entry[1], param));
    else rest.push(entry);
  }
  if (values.length === 0) throw badRequest(`query parameter ${param} is required (repeat it for each item)`);
  if (values.length > BATCH_REQUEST_LIMIT) {
    throw badRequest(`at most ${BATCH_REQUEST_LIMIT} ${param} values in one request`);
  }
  return { values, rest: singleValued(rest, others) };
}

function parseParameterBatch(q: Query): CollectionRequest {
  const { values, rest } = repeated(q, 'name', ['withDecryption', 'roleArn'], name);
  return {
    kind: 'ssm-batch',
    names: values,
    withDecryption: boolean(rest.get('withDecryption'), 'withDecryption'),
    ...role(rest),
  };
}

function parseParameterPath(q: Query): CollectionRequest {
  const m = singleValued(q, ['path', 'recursive', 'withDecryption', 'roleArn']);
  const path = name(m.get('path'), 'path');
  if (!path.startsWith('/')) throw badRequest('query parameter path must start with /');
  return {
    kind: 'ssm-path',
    path,
    recursive: boolean(m.get('recursive'), 'recursive'),
    withDecryption: boolean(m.get('withDecryption'), 'withDecryption'),
    ...role(m),
  };
}

function parseSecretBatch(q: Query): CollectionRequest {
  const { values, rest } = repeated(q, 'secretId', ['roleArn'], secretId);
  return { kind: 'secrets-batch', ids: values, ...role(rest) };
}

/** Every fixed route: a key missing from, or not in, ROUTE_PATHS is a type error. */
const ROUTE_TABLE: Record<RoutePath, Route> = {
  '/ping': { kind: 'ping' },
  '/': { kind: 'root' },
  '/ready': { kind: 'ready' },
  '/metrics': { kind: 'metrics' },
  '/systemsmanager/parameters/batch': { kind: 'collection', route: 'ssm-batch', parse: parseParameterBatch },
  '/systemsmanager/parameters/path': { kind: 'collection', route: 'ssm-path', parse: parseParameterPath },
  '/secretsmanager/batch': { kind: 'collection', route: 'secretsmanager-batch', parse: parseSecretBatch },
  '/systemsmanager/parameters/get': { kind: 'item', route: 'ssm', parse: parseParameter },
  '/secretsmanager/get': { kind: 'item', route: 'secretsmanager', parse: parseSecret },
  '/parameters/get': { kind: 'item', route: 'ssm-alias', parse: parseParameter },
  '/secrets/get': { kind: 'item', route: 'secretsmanager-alias', parse: parseSecretAlias },
};
const ROUTES = new Map<string, Route>(ROUTE_PATHS.map((p) => [p, ROUTE_TABLE[p]]));

/**
 * Looks a path up; a single trailing slash is accepted on every route (AWS's own samples use one). Paths
 * under `pathPrefix` are path-style secret reads; the exact routes are looked up first, at the same cost.
 */
export function findRoute(path: string, pathPrefix: string = DEFAULT_PATH_PREFIX): Route | undefined {
  const exact = ROUTES.get(path);
  if (exact) return exact;
  if (path.startsWith(pathPrefix)) {
    const rawId = path.slice(pathPrefix.length);
    return { kind: 'item', route: 'secretsmanager-path', parse: (q) => parseSecretPath(rawId, q) };
  }
  if (path.length > 1 && path.endsWith('/')) return ROUTES.get(path.slice(0, -1));
  return undefined;
}

export const notFoundRoute = () =>
  new HttpError(404, 'NotFound', 'no such route; see the pscache README for the HTTP API');
