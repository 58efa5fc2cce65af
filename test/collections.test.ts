// Batch answers put together from the cached bodies' bytes: byte for byte what parsing each body and
// serialising the whole would give (a reference model, fast-check with a printed seed), X-Pscache `miss`
// for an answer any item of which failed, and the size cap (400 AnswerTooLarge).
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import fc from 'fast-check';
import { AwsCallError, type WireParameter, type WireSecretValue } from '../src/aws/types.ts';
import type { Answer, ItemCache, ItemResult, Source } from '../src/cache/index.ts';
import { createClient } from '../src/client/index.ts';
import { Collections, MAX_BATCH_ANSWER_BYTES } from '../src/collections.ts';
import { toHttpError } from '../src/errors.ts';
import type { ItemRequest } from '../src/items.ts';
import { parameterBody, secretBody } from '../src/shapes.ts';
import { Daemons, TEST_TOKEN } from './helpers/daemon.ts';
import { sensitive, startWorld, type World, worldHooks } from './helpers/world.ts';

const seed = Number(process.env['FC_SEED'] ?? Date.now() % 2 ** 31);
const runs = Number(process.env['FC_RUNS'] ?? 300);

/** A cache that answers each item from `results`, by the id asked for. */
function cacheOf(results: Map<string, ItemResult>): ItemCache {
  return {
    getMany: async (rs: readonly ItemRequest[]) =>
      rs.map(
        (r) => results.get(r.service === 'ssm' ? r.name : r.secretId) ?? { ok: false, error: new Error('?') },
      ),
  } as unknown as ItemCache;
}

const ok = (body: string, source: Source = 'hit'): ItemResult => ({
  ok: true,
  answer: { body: Buffer.from(body), source },
});
const notFound = (code: string): ItemResult => ({
  ok: false,
  error: new AwsCallError(code, `${code} here`, 'aws', 400),
});

/** Strings with what JSON must escape, and what could be mistaken for the keys the joiner looks for. */
const text = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.constantFrom(',"Name":"', '\\",\\"Name\\":\\"x', '"', '\\', '\u2028', '\u0000', '},{', ''),
);
const parameter: fc.Arbitrary<WireParameter> = fc.record(
  {
    ARN: text,
    DataType: text,
    LastModifiedDate: fc.integer({ min: 0, max: 2_000_000_000 }),
    Name: text,
    Selector: text,
    SourceResult: text,
    Type: fc.constantFrom('String', 'StringList', 'SecureString'),
    Value: text,
    Version: fc.integer({ min: 1, max: 1000 }),
  },
  { requiredKeys: ['Name', 'Type'] },
);
const secret: fc.Arbitrary<WireSecretValue> = fc.record(
  {
    ARN: text,
    CreatedDate: fc.integer({ min: 0, max: 2_000_000_000 }),
    Name: text,
    SecretBinary: fc.base64String({ maxLength: 40 }),
    SecretString: text,
    VersionId: text,
    VersionStages: fc.array(text, { maxLength: 3 }),
  },
  { requiredKeys: [] },
);

describe('batch answers from cached bytes', () => {
  test(`parameters: the same bytes as parsing every body and serialising the answer (seed ${seed})`, async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(parameter, { minLength: 1, maxLength: 12 }),
        fc.array(fc.boolean()),
        async (ps, gone) => {
          const results = new Map<string, ItemResult>();
          const names = ps.map((_, i) => `id-${i}`);
          for (const [i, p] of ps.entries()) {
            results.set(names[i]!, gone[i] ? notFound('ParameterNotFound') : ok(parameterBody(p)));
          }
          const a = await new Collections(cacheOf(results)).get({
            kind: 'ssm-batch',
            names,
            withDecryption: true,
          });
          // The reference: what the answer was made of before (every body parsed, sorted, serialised).
          const kept = ps.filter((_, i) => !gone[i]).map((p) => JSON.parse(parameterBody(p)).Parameter);
          kept.sort((x, y) => (x.Name < y.Name ? -1 : x.Name > y.Name ? 1 : 0));
          const invalid = names.filter((_, i) => gone[i]);
          const expected = JSON.stringify({
            InvalidParameters: invalid,
            Parameters: kept,
            ResultMetadata: {},
          });
          assert.equal(a.body.toString(), expected);
        },
      ),
      { seed, numRuns: runs },
    );
  });

  test(`secrets: the same bytes as parsing every body and serialising the answer (seed ${seed})`, async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(secret, { minLength: 1, maxLength: 12 }),
        fc.array(fc.boolean()),
        async (ss, gone) => {
          const results = new Map<string, ItemResult>();
          const ids = ss.map((_, i) => `id-${i}`);
          for (const [i, s] of ss.entries()) {
            results.set(ids[i]!, gone[i] ? notFound('ResourceNotFoundException') : ok(secretBody(s)));
          }
          const a = await new Collections(cacheOf(results)).get({ kind: 'secrets-batch', ids });
          const values = ss
            .filter((_, i) => !gone[i])
            .map((s) => {
              const { ResultMetadata: _, ...shape } = JSON.parse(secretBody(s));
              return shape;
            });
          const errors = ids
            .filter((_, i) => gone[i])
            .map((id) => ({
              ErrorCode: 'ResourceNotFoundException',
              Message: 'ResourceNotFoundException here',
              SecretId: id,
            }));
          const expected = JSON.stringify({
            Errors: errors,
            NextToken: null,
            SecretValues: values,
            ResultMetadata: {},
          });
          assert.equal(a.body.toString(), expected);
        },
      ),
      { seed, numRuns: runs },
    );
  });

  test('X-Pscache: hit only when every item was answered from the cache; an item that failed makes it a miss', async () => {
    const body = secretBody({ Name: 's', SecretString: 'v' });
    const source = async (results: Array<[string, ItemResult]>): Promise<Answer['source']> =>
      (
        await new Collections(cacheOf(new Map(results))).get({
          kind: 'secrets-batch',
          ids: results.map(([id]) => id),
        })
      ).source;
    assert.equal(await source([['a', ok(body)]]), 'hit');
    assert.equal(
      await source([
        ['a', ok(body)],
        ['b', ok(body, 'stale')],
      ]),
      'stale',
    );
    assert.equal(
      await source([
        ['a', ok(body, 'stale')],
        ['b', ok(body, 'miss')],
      ]),
      'miss',
    );
    assert.equal(await source([['a', notFound('ResourceNotFoundException')]]), 'miss');
    assert.equal(
      await source([
        ['a', ok(body)],
        ['b', notFound('AccessDeniedException')],
      ]),
      'miss',
    );
    const params = new Map([['p', notFound('ParameterNotFound')]]);
    const a = await new Collections(cacheOf(params)).get({
      kind: 'ssm-batch',
      names: ['p'],
      withDecryption: false,
    });
    assert.equal(a.source, 'miss');
    assert.equal(a.body.toString(), '{"InvalidParameters":["p"],"Parameters":[],"ResultMetadata":{}}');
  });

  test(`an answer over ${MAX_BATCH_ANSWER_BYTES} bytes is 400 AnswerTooLarge, saying how large and what to do`, async () => {
    const big = secretBody({ Name: 'big', SecretString: 'x'.repeat(100_000) });
    const ids = Array.from({ length: 100 }, (_, i) => `big-${i}`);
    const results = new Map(ids.map((id) => [id, ok(big)] as const));
    const c = new Collections(cacheOf(results));
    const e = await (c.get({ kind: 'secrets-batch', ids }) as Promise<Answer>).then(
      () => assert.fail('answered'),
      (err: unknown) => toHttpError(err),
    );
    assert.equal(e.status, 400);
    assert.equal(e.type, 'AnswerTooLarge');
    assert.match(
      e.message,
      /^the answer would be \d+ bytes, more than the 8388608 a batch answer may hold; ask for these 100 items in smaller batches$/,
    );
    // Half of them fit.
    assert.equal(
      (await c.get({ kind: 'secrets-batch', ids: ids.slice(0, 50) })).body.length < MAX_BATCH_ANSWER_BYTES,
      true,
    );
  });

  test('a cached body in another shape is a fault of pscache (500), never a malformed answer', async () => {
    const c = new Collections(cacheOf(new Map([['a', ok('{"SecretString":"v"}')]])));
    const e = await (c.get({ kind: 'secrets-batch', ids: ['a'] }) as Promise<Answer>).then(
      () => assert.fail('answered'),
      (err: unknown) => toHttpError(err),
    );
    assert.equal(e.status, 500);
  });
});

describe('end to end', () => {
  let world: World;
  const daemons = new Daemons(() => world.emu.url);
  before(async () => {
    world = await startWorld();
  });
  worldHooks(() => world, daemons);

  test('a batch made only of errors went upstream: X-Pscache is miss, every time', async () => {
    const d = await daemons.start();
    for (let i = 0; i < 2; i++) {
      const s = await d.get('/secretsmanager/batch?secretId=nope%2F1&secretId=nope%2F2');
      assert.equal(s.status, 200, s.body);
      assert.equal(JSON.parse(s.body).Errors.length, 2);
      assert.equal(s.headers['x-pscache'], 'miss');
      const p = await d.get('/systemsmanager/parameters/batch?name=%2Fnope%2F1');
      assert.equal(p.status, 200, p.body);
      assert.deepEqual(JSON.parse(p.body).InvalidParameters, ['/nope/1']);
      assert.equal(p.headers['x-pscache'], 'miss');
    }
    await daemons.stop(d);
  });

  test('100 secrets of 64 KB of JSON answer more than 8 MB: 400 AnswerTooLarge; the client asks in halves', async () => {
    // Quotes are escaped in the answer: each 64 KB value takes ~128 KB there.
    const value = sensitive(`{"k":${JSON.stringify('"'.repeat(32_000))}}`.padEnd(64_000, ' '));
    const ids = Array.from({ length: 100 }, (_, i) => `big/${i}`);
    world.emu.seed({ secrets: ids.map((name) => ({ name, secretString: value })) });
    const d = await daemons.start();
    const path = `/secretsmanager/batch?${ids.map((id) => `secretId=${encodeURIComponent(id)}`).join('&')}`;
    const r = await d.get(path);
    assert.equal(r.status, 400);
    assert.equal(r.headers['content-type'], 'application/json');
    const body = JSON.parse(r.body);
    assert.equal(body.__type, 'AnswerTooLarge');
    assert.match(
      body.message,
      /more than the 8388608 a batch answer may hold; ask for these 100 items in smaller batches/,
    );
    const client = createClient({ port: d.port, token: TEST_TOKEN });
    try {
      const values = await client.getSecrets(ids);
      assert.equal(Object.keys(values).length, 100);
      assert.ok(Object.values(values).every((v) => v === value));
    } finally {
      client.close();
    }
    await daemons.stop(d);
  });
});
