// Batch and path reads (pscache extensions): GetParameters, GetParametersByPath and BatchGetSecretValue
// answers built from the same cache the single-item routes use; cached items are not fetched again.
import type { Upstream } from './aws/index.ts';
import { batchGetSecretValue } from './aws/secretsmanager.ts';
import { getParameters, getParametersByPath } from './aws/ssm.ts';
import type { WireParameter } from './aws/types.ts';
import type { Answer, ItemCache } from './cache.ts';
import { badRequest } from './errors.ts';
import { loadedParameter, loadedSecret } from './items.ts';
import { parameterShape, secretShape } from './shapes.ts';

/** Most parameters a path read returns; beyond it the caller is told to narrow the path. */
export const PATH_ITEM_LIMIT = 500;
/** Most names or ids in one batch request (sent upstream 10 or 20 at a time). */
export const BATCH_REQUEST_LIMIT = 100;

export type CollectionRequest =
  | { kind: 'ssm-batch'; names: string[]; withDecryption: boolean }
  | { kind: 'ssm-path'; path: string; recursive: boolean; withDecryption: boolean }
  | { kind: 'secrets-batch'; ids: string[] };

type ParameterShape = ReturnType<typeof parameterShape>;
type SecretShape = ReturnType<typeof secretShape>;

const chunks = <T>(items: T[], size: number): T[][] =>
  Array.from({ length: Math.ceil(items.length / size) }, (_, i) => items.slice(i * size, i * size + size));

export class Collections {
  constructor(
    private readonly cache: ItemCache,
    private readonly upstream: Upstream,
  ) {}

  get(c: CollectionRequest): Answer | Promise<Answer> {
    if (c.kind === 'ssm-batch') return this.parameterBatch(c.names, c.withDecryption);
    if (c.kind === 'secrets-batch') return this.secretBatch(c.ids);
    return this.cache.getCollection(
      `ssmpath\u0000${c.path}\u0000${c.recursive ? 1 : 0}\u0000${c.withDecryption ? 1 : 0}`,
      'ssm',
      () => this.path(c.path, c.recursive, c.withDecryption),
    );
  }

  private async parameterBatch(names: string[], withDecryption: boolean): Promise<Answer> {
    const epoch = this.cache.epoch;
    const found = new Map<string, ParameterShape>();
    const missing: string[] = [];
    for (const name of new Set(names)) {
      const body = this.cache.lookup({ service: 'ssm', name, withDecryption });
      if (body) found.set(name, JSON.parse(body.toString()).Parameter);
      else missing.push(name);
    }
    const invalid: string[] = [];
    const started = performance.now();
    const outs = await Promise.all(
      chunks(missing, 10).map((c) => getParameters(this.upstream.ssm, c, withDecryption)),
    );
    for (const out of outs) {
      for (const p of out.Parameters) {
        // An answer to `name:version` or `name:label` carries that Selector: it must not land under the
        // bare name's key, which stands for the latest version.
        if (p.Selector === undefined) {
          this.cache.store({ service: 'ssm', name: p.Name, withDecryption }, loadedParameter(p), epoch);
        }
        found.set(`${p.Name}${p.Selector ?? ''}`, parameterShape(p));
      }
      invalid.push(...out.InvalidParameters);
    }
    const parameters = [...found.values()].sort((a, b) => (a.Name < b.Name ? -1 : a.Name > b.Name ? 1 : 0));
    return answer({ InvalidParameters: invalid, Parameters: parameters }, missing.length, started);
  }

  private async secretBatch(ids: string[]): Promise<Answer> {
    const epoch = this.cache.epoch;
    const unique = [...new Set(ids)];
    const found = new Map<string, SecretShape>();
    const missing: string[] = [];
    for (const secretId of unique) {
      const body = this.cache.lookup({ service: 'secretsmanager', secretId });
      if (body) {
        const { ResultMetadata: _, ...shape } = JSON.parse(body.toString());
        found.set(secretId, shape);
      } else missing.push(secretId);
    }
    const errors: Array<{ ErrorCode: string | null; Message: string | null; SecretId: string | null }> = [];
    const started = performance.now();
    const outs = await Promise.all(
      chunks(missing, 20).map((c) => batchGetSecretValue(this.upstream.secretsmanager, c)),
    );
    const wanted = new Set(missing);
    for (const out of outs) {
      for (const s of out.SecretValues) {
        // The answer names a secret by Name and ARN; it was asked for by either.
        const id = [s.Name, s.ARN].find((x) => x !== undefined && wanted.has(x));
        if (id === undefined) continue;
        this.cache.store({ service: 'secretsmanager', secretId: id }, loadedSecret(s), epoch);
        found.set(id, secretShape(s));
      }
      for (const e of out.Errors) {
        errors.push({
          ErrorCode: e.ErrorCode ?? null,
          Message: e.Message ?? null,
          SecretId: e.SecretId ?? null,
        });
      }
    }
    const values = unique.flatMap((id) => {
      const v = found.get(id);
      return v ? [v] : [];
    });
    return answer({ Errors: errors, NextToken: null, SecretValues: values }, missing.length, started);
  }

  private async path(path: string, recursive: boolean, withDecryption: boolean): Promise<Buffer> {
    const epoch = this.cache.epoch;
    const all: WireParameter[] = [];
    let nextToken: string | undefined;
    do {
      const page = await getParametersByPath(this.upstream.ssm, {
        path,
        recursive,
        withDecryption,
        maxResults: 10,
        ...(nextToken !== undefined ? { nextToken } : {}),
      });
      all.push(...page.Parameters);
      if (all.length > PATH_ITEM_LIMIT) {
        throw badRequest(
          `path ${path} holds more than ${PATH_ITEM_LIMIT} parameters; narrow the path${recursive ? ' or drop recursive=true' : ''}`,
        );
      }
      nextToken = page.NextToken;
    } while (nextToken !== undefined);
    for (const p of all) {
      this.cache.store({ service: 'ssm', name: p.Name, withDecryption }, loadedParameter(p), epoch);
    }
    return Buffer.from(
      JSON.stringify({ NextToken: null, Parameters: all.map(parameterShape), ResultMetadata: {} }),
    );
  }
}

function answer(doc: object, fetched: number, started: number): Answer {
  const body = Buffer.from(JSON.stringify({ ...doc, ResultMetadata: {} }));
  return fetched === 0
    ? { body, source: 'hit' }
    : { body, source: 'miss', upstreamMs: performance.now() - started };
}
