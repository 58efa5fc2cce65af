// Requests and answers of the daemon's routes: options -> route and query, answer bodies -> values,
// with the json/binary transforms. Shared by the client and `pscache get`.
import { PscacheError, TransformError } from './errors.ts';
import type { Answer } from './http.ts';
import type { CacheOptions, ParameterOptions, SecretOptions, TransformMethod } from './options.ts';

export type Query = Array<[string, string]>;

/** A parameter as the daemon prints it (the fields the client reads). */
export interface WireParameter {
  ARN?: string | null;
  Name: string;
  Selector?: string | null;
  Value?: string | null;
}

export interface WireSecret {
  ARN?: string | null;
  Name?: string | null;
  SecretString?: string | null;
  SecretBinary?: string | null;
}

/** Items per batch request (the daemon's limit) and a query length well under its 8 KB URL limit. */
const BATCH_ITEMS = 100;
const BATCH_QUERY_CHARS = 6000;

/** A single-parameter request: route and query (shared with `pscache get`). */
export function parameterRequest(name: string, o: ParameterOptions): { path: string; query: Query } {
  checkName(name, 'name');
  if (o.version !== undefined && o.label !== undefined) {
    throw new TypeError('give either version or label, not both');
  }
  const query: Query = [['name', name]];
  if (o.version !== undefined) query.push(['version', String(o.version)]);
  if (o.label !== undefined) query.push(['label', o.label]);
  if (o.decrypt) query.push(['withDecryption', 'true']);
  pushCacheOptions(query, o);
  return { path: '/systemsmanager/parameters/get', query };
}

/** A single-secret request: route and query (shared with `pscache get`). */
export function secretRequest(id: string, o: SecretOptions): { path: string; query: Query } {
  checkName(id, 'id');
  const query: Query = [['secretId', id]];
  if (o.versionId !== undefined) query.push(['versionId', o.versionId]);
  if (o.versionStage !== undefined) query.push(['versionStage', o.versionStage]);
  pushCacheOptions(query, o);
  return { path: '/secretsmanager/get', query };
}

/** The value of a single-parameter answer, transformed. */
export function parameterValue(answer: Answer, method: TransformMethod | undefined, name: string): unknown {
  const doc = parse<{ Parameter: WireParameter }>(answer, name);
  return transform(doc.Parameter.Value ?? '', method, 'parameter', name);
}

/** The value of a single-secret answer: SecretString, or SecretBinary as bytes; transformed. */
export function secretAnswerValue(answer: Answer, method: TransformMethod | undefined, id: string): unknown {
  return secretValue(parse<WireSecret>(answer, id), method, id);
}
export function checkName(v: unknown, what: string): void {
  if (typeof v !== 'string' || v === '') throw new TypeError(`${what} must be a non-empty string`);
}

export function checkList(v: unknown, what: string): void {
  if (typeof v === 'string') {
    // Powertools' getParameters(path) reads a path; here that is getParametersByPath.
    throw new TypeError(`${what} must be an array of strings (for a path, use getParametersByPath)`);
  }
  if (!Array.isArray(v)) throw new TypeError(`${what} must be an array of strings`);
  for (const x of v) checkName(x, `every one of ${what}`);
}

export function pushCacheOptions(query: Query, o: CacheOptions): void {
  if (o.maxAge !== undefined && o.ttl !== undefined && o.maxAge !== o.ttl) {
    throw new TypeError('maxAge and ttl are the same option; give one');
  }
  const ttl = o.maxAge ?? o.ttl;
  if (o.forceFetch || o.refresh) query.push(['refreshNow', 'true']);
  if (ttl !== undefined) {
    if (!Number.isInteger(ttl) || ttl < 0)
      throw new RangeError('maxAge (ttl) must be a whole number of seconds');
    query.push(['ttl', String(ttl)]);
  }
}

/** Splits ids into requests the daemon accepts: at most 100 items, and a query far from its URL limit. */
export function chunks(items: string[]): string[][] {
  const out: string[][] = [];
  let current: string[] = [];
  let chars = 0;
  for (const item of items) {
    const size = encodeURIComponent(item).length + 10;
    if (current.length > 0 && (current.length === BATCH_ITEMS || chars + size > BATCH_QUERY_CHARS)) {
      out.push(current);
      current = [];
      chars = 0;
    }
    current.push(item);
    chars += size;
  }
  if (current.length > 0) out.push(current);
  return out;
}

export function parse<T>(answer: Answer, item: string | undefined): T {
  try {
    return JSON.parse(answer.body) as T;
  } catch {
    throw new PscacheError(`${item ?? 'batch'}: pscache answered 200 with a body that is not JSON`, {
      status: answer.status,
      type: 'MalformedResponse',
      item,
      attempts: answer.attempts,
    });
  }
}

/** Powertools' key for a path read: the name after the path, without a leading slash. */
export function relative(name: string, path: string): string {
  const rest = name.startsWith(path) ? name.slice(path.length) : name;
  return rest.startsWith('/') ? rest.slice(1) : rest;
}

export function secretValue(s: WireSecret, method: TransformMethod | undefined, id: string): unknown {
  if (typeof s.SecretBinary === 'string') {
    const bytes = decodeBase64(s.SecretBinary, 'secret', id, 'its SecretBinary');
    if (method === 'json') return parseJson(new TextDecoder().decode(bytes), 'secret', id);
    return bytes;
  }
  return transform(s.SecretString ?? '', method, 'secret', id);
}

export function transform(
  value: string,
  method: TransformMethod | undefined,
  kind: string,
  item: string,
): unknown {
  if (method === undefined) return value;
  if (method === 'json') return parseJson(value, kind, item);
  if (method === 'binary') return decodeBase64(value, kind, item, 'its value');
  throw new TypeError(`transform must be 'json' or 'binary', not ${JSON.stringify(method)}`);
}

function parseJson(value: string, kind: string, item: string): unknown {
  try {
    return JSON.parse(value);
  } catch {
    // V8's SyntaxError quotes the input, so neither its message nor the error itself is passed on.
    throw new TransformError(
      `the value of ${kind} ${item} is not valid JSON (transform 'json'; value not shown)`,
      {
        status: 200,
        type: 'TransformError',
        item,
        attempts: 1,
      },
    );
  }
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

function decodeBase64(value: string, kind: string, item: string, what: string): Uint8Array {
  const s = value.replace(/\s+/g, '');
  if (s.length % 4 !== 0 || !BASE64.test(s)) {
    throw new TransformError(
      `${what} of ${kind} ${item} is not valid base64 (transform 'binary'; value not shown)`,
      {
        status: 200,
        type: 'TransformError',
        item,
        attempts: 1,
      },
    );
  }
  // A copy with its own memory: a pooled Buffer's .buffer would expose unrelated bytes.
  return new Uint8Array(Buffer.from(s, 'base64'));
}
