// The request checks as functions: the token comparison (no hash per request: a scratch buffer and a
// constant-time compare) and the Host memo. Property runs print their seed; replay with PSCACHE_CHECKS_SEED.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { HttpError } from '../src/errors.ts';
import { checkOrigin, MAX_HEADER_BYTES, TOKEN_HEADER, TokenCheck } from '../src/server/checks.ts';

const seed = Number(process.env['PSCACHE_CHECKS_SEED'] ?? Date.now() % 2_147_483_647);

const status = (f: () => void): number | 'ok' => {
  try {
    f();
    return 'ok';
  } catch (e) {
    assert.ok(e instanceof HttpError);
    return e.status;
  }
};

test('the token matches itself only: not a prefix, an extension, another case or a near miss', () => {
  const t = new TokenCheck('tok-0123456789abcdef');
  assert.equal(t.matches('tok-0123456789abcdef'), true);
  for (const wrong of [
    'tok-0123456789abcde',
    'tok-0123456789abcdef0',
    'TOK-0123456789ABCDEF',
    'tok-0123456789abcdeg',
    'x',
    'tok-0123456789abcdef, tok-0123456789abcdef', // a repeated header, as Node joins it
  ]) {
    assert.equal(t.matches(wrong), false, wrong);
  }
  // Nothing of one value survives into the next answer: a right value, then shorter and longer ones.
  assert.equal(t.matches('tok-0123456789abcdef'), true);
  assert.equal(t.matches('tok-0123'), false);
  assert.equal(t.matches('tok-0123456789abcdef'.repeat(3)), false);
  assert.equal(t.matches(''), false);
  assert.equal(t.matches('tok-0123456789abcdef'), true);
});

test('values that write past the token are never taken for it, whatever their characters', () => {
  const t = new TokenCheck('abc');
  // A character that does not fit whole is not written: the 8 spare bytes make sure one always does.
  for (const tail of ['\u00e9', '\u0800', '\u{1f600}', '\u00ff\u00ff\u00ff\u00ff\u00ff']) {
    assert.equal(t.matches(`abc${tail}`), false, JSON.stringify(tail));
  }
  const wide = new TokenCheck('t\u00f8ken-\u00fc');
  assert.equal(wide.matches('t\u00f8ken-\u00fc'), true);
  assert.equal(wide.matches('t\u00f8ken-u'), false);
  // The most a header can hold, and a token longer than the scratch minimum.
  assert.equal(t.matches('\u00ff'.repeat(MAX_HEADER_BYTES)), false);
  const long = 'L'.repeat(3 * MAX_HEADER_BYTES);
  const lt = new TokenCheck(long);
  assert.equal(lt.matches(long), true);
  assert.equal(lt.matches(`${long}L`), false);
  assert.equal(lt.matches(long.slice(1)), false);
});

test('check(): every token header a request carries must hold the token; absent and empty count as missing', () => {
  const t = new TokenCheck('s3cr3t', [TOKEN_HEADER, 'X-Vault-Token']);
  assert.equal(
    status(() => t.check({ 'x-aws-parameters-secrets-token': 's3cr3t' })),
    'ok',
  );
  assert.equal(
    status(() => t.check({ 'x-vault-token': 's3cr3t' })),
    'ok',
  );
  assert.equal(
    status(() => t.check({ 'x-aws-parameters-secrets-token': 's3cr3t', 'x-vault-token': 'guess' })),
    401,
  );
  assert.equal(
    status(() => t.check({ 'x-aws-parameters-secrets-token': '' })),
    401,
  );
  assert.equal(
    status(() => t.check({})),
    401,
  );
  assert.equal(
    status(() => new TokenCheck(undefined).check({ 'x-aws-parameters-secrets-token': 's3cr3t' })),
    401,
  );
  try {
    t.check({ 'x-vault-token': 'guess' });
    assert.fail('accepted');
  } catch (e) {
    assert.ok(e instanceof HttpError);
    assert.ok(!e.message.includes('s3cr3t') && !e.message.includes('guess'), e.message);
  }
});

test(`matches(given) is given === token, over random tokens and values (seed ${seed})`, () => {
  console.log(`token check seed ${seed} (PSCACHE_CHECKS_SEED=${seed} to replay)`);
  // Header values come from Node decoded as latin1; tokens come from configuration (any Unicode).
  const latin1 = fc.string({ unit: fc.integer({ min: 0x20, max: 0xff }).map((c) => String.fromCharCode(c)) });
  const token = fc.oneof(latin1, fc.string({ unit: 'grapheme' }), fc.string()).filter((s) => s !== '');
  // Values near the token are where a comparison goes wrong: cut, extended, one character changed.
  const near = (tok: string) =>
    fc.oneof(
      fc.constant(tok),
      latin1,
      fc.nat(tok.length).map((n) => tok.slice(0, n)),
      latin1.map((s) => tok + s),
      fc
        .tuple(fc.nat(tok.length - 1), fc.integer({ min: 0x20, max: 0xff }))
        .map(([i, c]) => tok.slice(0, i) + String.fromCharCode(c) + tok.slice(i + 1)),
    );
  fc.assert(
    fc.property(
      token.chain((tok) => fc.tuple(fc.constant(tok), fc.array(near(tok), { minLength: 1, maxLength: 8 }))),
      ([tok, values]) => {
        const t = new TokenCheck(tok);
        for (const v of values) {
          if (t.matches(v) !== (v === tok)) return false;
        }
        return true;
      },
    ),
    { seed, numRuns: 2000 },
  );
});

test('a Host found good is remembered, and a bad one is refused all the same', () => {
  const sequence: Array<[Record<string, string>, number | 'ok']> = [
    [{ host: '127.0.0.1:2773' }, 'ok'],
    [{ host: '127.0.0.1:2773' }, 'ok'],
    [{ host: 'evil.example:2773' }, 400],
    [{ host: '127.0.0.1:2773', 'x-forwarded-for': '1.2.3.4' }, 400],
    [{ host: 'evil.example:2773' }, 400],
    [{ host: 'localhost' }, 'ok'],
    [{ host: '127.0.0.1:2773' }, 'ok'],
  ];
  for (const [headers, expected] of sequence) {
    assert.equal(
      status(() => checkOrigin(headers)),
      expected,
      JSON.stringify(headers),
    );
  }
});
