// Batch and path reads (pscache extensions): GetParameters-, BatchGetSecretValue- and GetParametersByPath-
// shaped answers put together from the cache's per-item results: the items' cached bytes joined, never
// parsed again. Nothing here calls upstream: every item goes through the cache's state machine like a
// single read.
import { MAX_RESPONSE_BYTES } from './aws/client.ts';
import { AssumeRoleError, AwsCallError } from './aws/types.ts';
import type { Answer, ItemCache, ItemResult, Source } from './cache/index.ts';
import { AnswerTooLargeError } from './errors.ts';
import type { ItemRequest } from './items.ts';
import { parameterItem, parameterName, secretItem } from './shapes.ts';

/** Most names or ids in one batch request (sent upstream 10 or 20 at a time). */
export const BATCH_REQUEST_LIMIT = 100;

/** `roleArn`: read with credentials from AssumeRole on that role (absent: the base credentials). */
export type CollectionRequest =
  | { kind: 'ssm-batch'; names: string[]; withDecryption: boolean; roleArn?: string }
  | { kind: 'ssm-path'; path: string; recursive: boolean; withDecryption: boolean; roleArn?: string }
  | { kind: 'secrets-batch'; ids: string[]; roleArn?: string };

/** What GetParameter answers for a name that does not exist: such names go to InvalidParameters. */
const NOT_FOUND = new Set(['ParameterNotFound', 'ParameterVersionNotFound']);

/**
 * Most bytes one batch answer may hold: what pscache accepts from AWS in one answer. 100 secrets of 60 KB
 * (6 MB) fit; beyond it the read is 400 AnswerTooLarge, and smaller batches of the same ids are hits.
 */
export const MAX_BATCH_ANSWER_BYTES = MAX_RESPONSE_BYTES;

/**
 * `miss` when any item waited on upstream or failed (nothing cached answered it), else `stale` when any
 * was stale, else `hit`.
 */
function sourceOf(answers: Answer[], failed: number): { source: Source; upstreamMs?: number } {
  let upstreamMs: number | undefined;
  let source: Source = failed > 0 ? 'miss' : 'hit';
  for (const a of answers) {
    if (a.upstreamMs !== undefined) upstreamMs = Math.max(upstreamMs ?? 0, a.upstreamMs);
    if (a.source === 'miss' || (a.source === 'stale' && source === 'hit')) source = a.source;
  }
  return upstreamMs === undefined ? { source } : { source, upstreamMs };
}

const COMMA = Buffer.from(',');

/**
 * `head`, the items joined by commas, `tail`: the items are views of cached bodies, so the only copy is
 * the answer itself. Its size is known before it is made.
 */
function joined(head: string, items: Buffer[][], tail: string): Buffer {
  const parts: Buffer[] = [Buffer.from(head)];
  items.forEach((item, i) => {
    if (i > 0) parts.push(COMMA);
    parts.push(...item);
  });
  parts.push(Buffer.from(tail));
  let bytes = 0;
  for (const p of parts) bytes += p.length;
  if (bytes > MAX_BATCH_ANSWER_BYTES)
    throw new AnswerTooLargeError(bytes, items.length, MAX_BATCH_ANSWER_BYTES);
  return Buffer.concat(parts, bytes);
}

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
    const parameters: Array<{ name: string; item: Buffer }> = [];
    const invalid: string[] = [];
    const answers: Answer[] = [];
    results.forEach((x, i) => {
      if (x.ok) {
        answers.push(x.answer);
        const item = parameterItem(x.answer.body);
        parameters.push({ name: parameterName(item), item });
      } else if (x.error instanceof AwsCallError && NOT_FOUND.has(x.error.code)) {
        invalid.push(unique[i]!);
      } else {
        // GetParameters has no per-item error: the read fails as a whole, as the call would have.
        throw x.error;
      }
    });
    parameters.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    return {
      body: joined(
        `{"InvalidParameters":${JSON.stringify(invalid)},"Parameters":[`,
        parameters.map((p) => [p.item]),
        '],"ResultMetadata":{}}',
      ),
      ...sourceOf(answers, invalid.length),
    };
  }

  private async secretBatch(ids: string[], role: { roleArn?: string }): Promise<Answer> {
    const unique = [...new Set(ids)];
    const results = await this.cache.getMany(
      unique.map((secretId): ItemRequest => ({ service: 'secretsmanager', secretId, ...role })),
    );
    const values: Buffer[][] = [];
    const errors: Array<{ ErrorCode: string; Message: string | null; SecretId: string }> = [];
    const answers: Answer[] = [];
    results.forEach((x: ItemResult, i) => {
      if (x.ok) {
        answers.push(x.answer);
        values.push(secretItem(x.answer.body));
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
    return {
      body: joined(
        `{"Errors":${JSON.stringify(errors)},"NextToken":null,"SecretValues":[`,
        values,
        '],"ResultMetadata":{}}',
      ),
      ...sourceOf(answers, errors.length),
    };
  }
}
