// createClient: a Transport (keep-alive, timeout, retries) plus the five reads, as closures that do not
// use `this`, so `const { getParameter } = createClient()` works.
import type { Env } from './env.ts';
import { errorForCode, NotFoundError, PscacheError } from './errors.ts';
import { type Answer, Transport } from './http.ts';
import type {
  ClientOptions,
  ParameterOptions,
  ParametersOptions,
  PathOptions,
  PscacheClient,
  SecretOptions,
  SecretsOptions,
} from './options.ts';
import {
  checkList,
  checkName,
  chunks,
  parameterRequest,
  parameterValue,
  parse,
  type Query,
  relative,
  secretAnswerValue,
  secretRequest,
  secretValue,
  transform,
  type WireParameter,
  type WireSecret,
} from './requests.ts';

const DEFAULTS = { timeoutMs: 1000, retries: 2, retryBaseMs: 100, retryMaxDelayMs: 1000 };

/**
 * One batch request per chunk, concurrently; a chunk whose answer the daemon finds too large (400
 * AnswerTooLarge: over 8 MB) is asked for again in halves.
 */
async function batches(items: string[], get: (chunk: string[]) => Promise<Answer>): Promise<Answer[]> {
  const one = async (chunk: string[]): Promise<Answer[]> => {
    try {
      return [await get(chunk)];
    } catch (e) {
      if (!(e instanceof PscacheError) || e.__type !== 'AnswerTooLarge' || chunk.length < 2) throw e;
      const half = Math.ceil(chunk.length / 2);
      const parts = await Promise.all([one(chunk.slice(0, half)), one(chunk.slice(half))]);
      return parts.flat();
    }
  };
  return (await Promise.all(chunks(items).map(one))).flat();
}

export function createClient(options: ClientOptions = {}): PscacheClient {
  const transport = new Transport({
    port: options.port,
    token: options.token,
    timeoutMs: positive(options.timeoutMs, 'timeoutMs', DEFAULTS.timeoutMs),
    retries: whole(options.retries, 'retries', DEFAULTS.retries),
    retryBaseMs: whole(options.retryBaseMs, 'retryBaseMs', DEFAULTS.retryBaseMs),
    retryMaxDelayMs: whole(options.retryMaxDelayMs, 'retryMaxDelayMs', DEFAULTS.retryMaxDelayMs),
    env: options.env ?? (process.env as Env),
  });
  if (
    options.port !== undefined &&
    !(Number.isInteger(options.port) && options.port >= 1 && options.port <= 65535)
  ) {
    throw new RangeError(`port ${String(options.port)} is invalid: must be a whole number from 1 to 65535`);
  }
  if (options.token !== undefined && (typeof options.token !== 'string' || options.token === '')) {
    throw new TypeError('token must be a non-empty string (or leave it out to read the environment)');
  }

  const getParameter = async (name: string, o: ParameterOptions = {}): Promise<unknown> => {
    const r = parameterRequest(name, o);
    return parameterValue(await transport.get(r.path, r.query, name), o.transform, name);
  };

  const getParameters = async (
    names: readonly string[],
    o: ParametersOptions = {},
  ): Promise<Record<string, unknown>> => {
    checkList(names, 'names');
    const out: Record<string, unknown> = {};
    const unique = [...new Set(names)];
    const answers = await batches(unique, (chunk) => {
      const query: Query = chunk.map((n) => ['name', n]);
      if (o.decrypt) query.push(['withDecryption', 'true']);
      return transport.get('/systemsmanager/parameters/batch', query, undefined);
    });
    // The answer names each parameter by Name (plus Selector) and ARN; it was asked for by any of them.
    const byKey = new Map<string, WireParameter>();
    for (const answer of answers) {
      const doc = parse<{ Parameters: WireParameter[] }>(answer, undefined);
      for (const p of doc.Parameters) {
        const sel = p.Selector ?? '';
        for (const k of [p.Name, `${p.Name}${sel}`, p.ARN, p.ARN ? `${p.ARN}${sel}` : undefined]) {
          if (k) byKey.set(k, p);
        }
      }
    }
    const missing: string[] = [];
    const attempts = Math.max(...answers.map((a) => a.attempts));
    for (const name of unique) {
      const p = byKey.get(name);
      if (p === undefined) missing.push(name);
      else out[name] = transform(p.Value ?? '', o.transform, 'parameter', name);
    }
    if (missing.length > 0 && o.throwOnError !== false) {
      throw new NotFoundError(`parameters not found: ${missing.join(', ')}`, {
        status: 404,
        type: 'ParameterNotFound',
        item: missing[0],
        attempts,
      });
    }
    return out;
  };

  const getParametersByPath = async (path: string, o: PathOptions = {}): Promise<Record<string, unknown>> => {
    checkName(path, 'path');
    const query: Query = [['path', path]];
    if (o.recursive) query.push(['recursive', 'true']);
    if (o.decrypt) query.push(['withDecryption', 'true']);
    const answer = await transport.get('/systemsmanager/parameters/path', query, path);
    const doc = parse<{ Parameters: WireParameter[] }>(answer, path);
    const out: Record<string, unknown> = {};
    for (const p of doc.Parameters) {
      out[relative(p.Name, path)] = transform(p.Value ?? '', o.transform, 'parameter', p.Name);
    }
    return out;
  };

  const getSecret = async (id: string, o: SecretOptions = {}): Promise<unknown> => {
    const r = secretRequest(id, o);
    return secretAnswerValue(await transport.get(r.path, r.query, id), o.transform, id);
  };

  const getSecrets = async (
    ids: readonly string[],
    o: SecretsOptions = {},
  ): Promise<Record<string, unknown>> => {
    checkList(ids, 'ids');
    const unique = [...new Set(ids)];
    const answers = await batches(unique, (chunk) =>
      transport.get(
        '/secretsmanager/batch',
        chunk.map((id) => ['secretId', id]),
        undefined,
      ),
    );
    const byKey = new Map<string, WireSecret>();
    const errors = new Map<string, PscacheError>();
    for (const answer of answers) {
      const doc = parse<{
        SecretValues: WireSecret[];
        Errors: Array<{ ErrorCode: string | null; Message: string | null; SecretId: string | null }>;
      }>(answer, undefined);
      for (const s of doc.SecretValues) {
        if (s.Name) byKey.set(s.Name, s);
        if (s.ARN) byKey.set(s.ARN, s);
      }
      for (const e of doc.Errors) {
        if (e.SecretId === null) continue;
        const code = e.ErrorCode ?? 'InternalError';
        errors.set(e.SecretId, errorForCode(code, `${e.SecretId}: ${e.Message ?? code}`, e.SecretId));
      }
    }
    const out: Record<string, unknown> = {};
    for (const id of unique) {
      const s = byKey.get(id);
      if (s !== undefined) {
        out[id] = secretValue(s, o.transform, id);
        continue;
      }
      if (o.throwOnError === false) continue;
      throw (
        errors.get(id) ??
        new NotFoundError(`${id}: not in the answer`, {
          status: 404,
          type: 'ResourceNotFoundException',
          item: id,
          attempts: 1,
        })
      );
    }
    return out;
  };

  return {
    getParameter: getParameter as PscacheClient['getParameter'],
    getParameters: getParameters as PscacheClient['getParameters'],
    getParametersByPath: getParametersByPath as PscacheClient['getParametersByPath'],
    getSecret: getSecret as PscacheClient['getSecret'],
    getSecrets: getSecrets as PscacheClient['getSecrets'],
    close: () => transport.close(),
  };
}
function positive(v: number | undefined, name: string, fallback: number): number {
  if (v === undefined) return fallback;
  if (!Number.isFinite(v) || v <= 0)
    throw new RangeError(`${name} must be a positive number of milliseconds`);
  return v;
}

function whole(v: number | undefined, name: string, fallback: number): number {
  if (v === undefined) return fallback;
  if (!Number.isInteger(v) || v < 0) throw new RangeError(`${name} must be a whole number, 0 or more`);
  return v;
}
