// Batch and path reads (pscache extensions): GetParameters-, BatchGetSecretValue- and GetParametersByPath-
// shaped answers put together from the cache's per-item results. Nothing here calls upstream: every item
// goes through the cache's state machine like a single read.
import { AssumeRoleError, AwsCallError } from './aws/types.ts';
import type { Answer, ItemCache, ItemResult, Source } from './cache/index.ts';
import type { ItemRequest } from './items.ts';

/** Most names or ids in one batch request (sent upstream 10 or 20 at a time). */
export const BATCH_REQUEST_LIMIT = 100;

/** `roleArn`: read with credentials from AssumeRole on that role (absent: the base credentials). */
export type CollectionRequest =
  | { kind: 'ssm-batch'; names: string[]; withDecryption: boolean; roleArn?: string }
  | { kind: 'ssm-path'; path: string; recursive: boolean; withDecryption: boolean; roleArn?: string }
  | { kind: 'secrets-batch'; ids: string[]; roleArn?: string };

/** What GetParameter answers for a name that does not exist: such names go to InvalidParameters. */
const NOT_FOUND = new Set(['ParameterNotFound', 'ParameterVersionNotFound']);

/** `miss` when any item waited on upstream, else `stale` when any was stale, else `hit`. */
function sourceOf(answers: Answer[]): { source: Source; upstreamMs?: number } {
  const waited = answers.filter((a) => a.upstreamMs !== undefined).map((a) => a.upstreamMs!);
  const upstreamMs = waited.length > 0 ? Math.max(...waited) : undefined;
  const source: Source = answers.some((a) => a.source === 'miss')
    ? 'miss'
    : answers.some((a) => a.source === 'stale')
      ? 'stale'
      : 'hit';
  return upstreamMs === undefined ? { source } : { source, upstreamMs };
}

const render = (doc: object, answers: Answer[]): Answer => ({
  body: Buffer.from(JSON.stringify({ ...doc, ResultMetadata: {} })),
  ...sourceOf(answers),
});

export class Collections {
  constructor(private readonly cache: ItemCache) {}

  get(c: CollectionRequest): Answer | Promise<Answer> {
    const role = c.roleArn !== undefined ? { roleArn: c.roleArn } : {};
    if (c.kind === 'ssm-path') {
      return this.cache.getPath({
        path: c.path,
        recursive: c.recursive,
        withDecryption: c.withDecryption,
        ...role,
      });
    }
    if (c.kind === 'ssm-batch') return this.parameterBatch(c.names, c.withDecryption, role);
    return this.secretBatch(c.ids, role);
  }

  private async parameterBatch(
    names: string[],
    withDecryption: boolean,
    role: { roleArn?: string },
  ): Promise<Answer> {
    const unique = [...new Set(names)];
    const results = await this.cache.getMany(
      unique.map((name): ItemRequest => ({ service: 'ssm', name, withDecryption, ...role })),
    );
    const parameters: Array<{ Name: string }> = [];
    const invalid: string[] = [];
    const answers: Answer[] = [];
    results.forEach((x, i) => {
      if (x.ok) {
        answers.push(x.answer);
        parameters.push(JSON.parse(x.answer.body.toString()).Parameter);
      } else if (x.error instanceof AwsCallError && NOT_FOUND.has(x.error.code)) {
        invalid.push(unique[i]!);
      } else {
        // GetParameters has no per-item error: the read fails as a whole, as the call would have.
        throw x.error;
      }
    });
    parameters.sort((a, b) => (a.Name < b.Name ? -1 : a.Name > b.Name ? 1 : 0));
    return render({ InvalidParameters: invalid, Parameters: parameters }, answers);
  }

  private async secretBatch(ids: string[], role: { roleArn?: string }): Promise<Answer> {
    const unique = [...new Set(ids)];
    const results = await this.cache.getMany(
      unique.map((secretId): ItemRequest => ({ service: 'secretsmanager', secretId, ...role })),
    );
    const values: object[] = [];
    const errors: Array<{ ErrorCode: string; Message: string | null; SecretId: string }> = [];
    const answers: Answer[] = [];
    results.forEach((x: ItemResult, i) => {
      if (x.ok) {
        answers.push(x.answer);
        const { ResultMetadata: _, ...shape } = JSON.parse(x.answer.body.toString());
        values.push(shape);
      } else if (
        x.error instanceof AwsCallError &&
        x.error.kind === 'aws' &&
        !(x.error instanceof AssumeRoleError)
      ) {
        // What BatchGetSecretValue reports per secret (not found, denied, cannot decrypt).
        errors.push({ ErrorCode: x.error.code, Message: x.error.message || null, SecretId: unique[i]! });
      } else {
        // Throttling, 5xx, timeouts: the read fails as a whole, so the caller retries it.
        throw x.error;
      }
    });
    return render({ Errors: errors, NextToken: null, SecretValues: values }, answers);
  }
}
