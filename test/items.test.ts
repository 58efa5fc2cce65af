// What a read asks for, as src/items.ts turns it into keys and ids: every part of a request that changes
// the answer changes the key, every id an object is known by is found from an ARN or an answer, and a
// batch answer's item is matched to the id asked for exactly (a partial ARN only when it is the ARN less
// its random suffix).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { WireParameter, WireSecretValue } from '../src/aws/types.ts';
import {
  answers,
  arnRegion,
  batchable,
  batchId,
  cacheKey,
  type ItemRequest,
  idKey,
  idsOf,
  itemName,
  loadedParameter,
  loadedSecret,
  type ParameterRequest,
  pathKey,
  plainKey,
  type SecretRequest,
  selectorOf,
} from '../src/items.ts';

const ROLE = 'arn:aws:iam::123456789012:role/r';
const param = (name: string, more: Partial<ParameterRequest> = {}): ParameterRequest => ({
  service: 'ssm',
  name,
  withDecryption: false,
  ...more,
});
const secret = (secretId: string, more: Partial<SecretRequest> = {}): SecretRequest => ({
  service: 'secretsmanager',
  secretId,
  ...more,
});
const SM_ARN = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db-AbCdEf';
const SSM_ARN = 'arn:aws:ssm:eu-west-1:123456789012:parameter/app/x';

describe('cache keys', () => {
  test('every part that changes the answer makes its own key; equal requests share one', () => {
    const requests: ItemRequest[] = [
      param('/a'),
      param('/a', { withDecryption: true }),
      param('/a', { version: '3' }),
      param('/a', { label: '3' }),
      param('/a', { roleArn: ROLE }),
      param('/b'),
      secret('/a'),
      secret('a'),
      secret('a', { versionId: 'v' }),
      secret('a', { versionStage: 'v' }),
      secret('a', { versionId: 'v', versionStage: 'S' }),
      secret('a', { roleArn: ROLE }),
    ];
    const keys = requests.map(cacheKey);
    assert.equal(new Set(keys).size, keys.length, 'no two differ only in a part the key drops');
    assert.equal(cacheKey(param('/a', { version: '3' })), keys[2]);
    assert.equal(cacheKey(secret('a', { versionStage: 'v' })), keys[9]);
  });

  test('the shared key of a parameter: the same for both flags, apart for selectors and roles; none for secrets', () => {
    assert.equal(plainKey(param('/a')), plainKey(param('/a', { withDecryption: true })));
    const shared = [
      plainKey(param('/a')),
      plainKey(param('/a', { version: '1' })),
      plainKey(param('/a', { label: 'L' })),
      plainKey(param('/a', { roleArn: ROLE })),
      plainKey(param('/b')),
    ];
    assert.equal(new Set(shared).size, shared.length);
    for (const k of shared) assert.ok(!new Set([cacheKey(param('/a')), cacheKey(param('/b'))]).has(k!));
    assert.equal(plainKey(secret('a')), undefined);
  });

  test('a key is built once for a frozen request, and follows an unfrozen one that changes', () => {
    const frozen = Object.freeze(param('/f'));
    assert.equal(cacheKey(frozen), cacheKey(param('/f')));
    assert.equal(cacheKey(frozen), cacheKey(frozen));
    const loose = param('/g');
    const before = cacheKey(loose);
    loose.name = '/h';
    assert.notEqual(cacheKey(loose), before, 'a request that is not frozen is never taken from the memo');
    assert.equal(cacheKey(loose), cacheKey(param('/h')));
    const loosePlain = param('/g');
    const p1 = plainKey(loosePlain);
    loosePlain.name = '/h';
    assert.notEqual(plainKey(loosePlain), p1);
  });

  test('path keys: path, recursion, decryption flag and role each count', () => {
    const keys = [
      pathKey({ path: '/a', recursive: false, withDecryption: false }),
      pathKey({ path: '/a', recursive: true, withDecryption: false }),
      pathKey({ path: '/a', recursive: false, withDecryption: true }),
      pathKey({ path: '/a', recursive: false, withDecryption: false, roleArn: ROLE }),
      pathKey({ path: '/b', recursive: false, withDecryption: false }),
    ];
    assert.equal(new Set(keys).size, keys.length);
    assert.ok(!keys.includes(cacheKey(param('/a'))));
  });

  test('id keys: one per role, service and id, whatever the selector or flag', () => {
    const keys = [
      idKey(param('/a'), '/a'),
      idKey(param('/a', { roleArn: ROLE }), '/a'),
      idKey(secret('/a'), '/a'),
      idKey(param('/a'), '/b'),
    ];
    assert.equal(new Set(keys).size, keys.length);
    assert.equal(idKey(param('/a', { version: '1', withDecryption: true }), '/a'), keys[0]);
    for (const k of keys) assert.ok(![cacheKey(param('/a')), plainKey(param('/a'))].includes(k));
  });
});

describe('ids an object is known by', () => {
  test('a name is its only id', () => {
    assert.deepEqual(idsOf(param('/app/x')), ['/app/x']);
    assert.deepEqual(idsOf(secret('prod/db')), ['prod/db']);
  });

  test("a parameter ARN names its parameter, with and without the leading '/', and without a selector", () => {
    assert.deepEqual(idsOf(param(SSM_ARN)), [SSM_ARN, '/app/x', 'app/x']);
    assert.deepEqual(idsOf(param(`${SSM_ARN}:3`)), [`${SSM_ARN}:3`, '/app/x', 'app/x']);
    const odd = 'arn:aws:ssm:us-east-1:123456789012:document/x';
    assert.deepEqual(idsOf(param(odd)), [odd], 'an ARN that names no parameter is only itself');
  });

  test('a secret ARN is only itself: whether it ends in a random suffix only the answer says', () => {
    assert.deepEqual(idsOf(secret(SM_ARN)), [SM_ARN]);
    const partial = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:app-secret';
    assert.deepEqual(idsOf(secret(partial)), [partial], 'app-secret is a name, not app and a suffix');
  });

  test("an answer names the object by its Name and ARN (and a secret's partial ARN)", () => {
    const p: WireParameter = { Name: '/app/x', Type: 'String', Value: 'v', ARN: SSM_ARN };
    assert.deepEqual(loadedParameter(p).ids, ['/app/x', SSM_ARN]);
    assert.equal(loadedParameter(p).plain, true);
    assert.deepEqual(loadedParameter({ Name: '/n', Type: 'StringList', Value: 'a,b' }).ids, ['/n']);
    const sec = loadedParameter({ ...p, Type: 'SecureString' });
    assert.equal(sec.plain, undefined, 'a SecureString reads otherwise with each flag');
    assert.match(sec.body.toString(), /"Type":"SecureString"/);
    const s: WireSecretValue = { Name: 'prod/db', ARN: SM_ARN, SecretString: 'x' };
    assert.deepEqual(loadedSecret(s).ids, ['prod/db', SM_ARN, SM_ARN.slice(0, -7)]);
    assert.deepEqual(
      loadedSecret({ ARN: 'arn:aws:secretsmanager:us-east-1:1:secret:nosuffix', SecretString: 'x' }).ids,
      ['arn:aws:secretsmanager:us-east-1:1:secret:nosuffix'],
    );
    assert.deepEqual(loadedSecret({ SecretString: 'x' }).ids, []);
    assert.match(loadedSecret(s).body.toString(), /"SecretString":"x"/);
  });
});

describe('selectors and names', () => {
  test("selectors: '' for none, otherwise one per version, label, versionId and versionStage", () => {
    assert.equal(selectorOf(param('/a')), '');
    assert.equal(selectorOf(param('/a', { withDecryption: true })), '');
    assert.equal(selectorOf(secret('a')), '');
    const sels = [
      selectorOf(param('/a', { version: '1' })),
      selectorOf(param('/a', { label: '1' })),
      selectorOf(secret('a', { versionId: '1' })),
      selectorOf(secret('a', { versionStage: '1' })),
      selectorOf(secret('a', { versionId: '1', versionStage: '1' })),
    ];
    for (const s of sels) assert.notEqual(s, '');
    assert.equal(new Set(sels).size, sels.length);
  });

  test('itemName is the name or secret id asked for', () => {
    assert.equal(itemName(param('/a')), '/a');
    assert.equal(itemName(secret('s')), 's');
  });

  test('batchId: the id a batch call asks for, with its selector', () => {
    assert.equal(batchId(param('/a')), '/a');
    assert.equal(batchId(param('/a', { version: '3' })), '/a:3');
    assert.equal(batchId(param('/a', { label: 'L' })), '/a:L');
    assert.equal(batchId(secret('s', { versionStage: 'AWSCURRENT' })), 's');
  });

  test('batchable: plain names without a selector only', () => {
    assert.equal(batchable(param('/a')), true);
    assert.equal(batchable(param('/a', { withDecryption: true })), true);
    assert.equal(batchable(param('/a', { version: '1' })), false);
    assert.equal(batchable(param('/a', { label: 'L' })), false);
    assert.equal(batchable(param(SSM_ARN)), false);
    assert.equal(batchable(param('/a:3')), false);
    assert.equal(batchable(param('x-arn:y')), false);
    assert.equal(batchable(secret('s')), true);
    assert.equal(batchable(secret(SM_ARN)), true);
    assert.equal(batchable(secret('s', { versionId: 'v' })), false);
    assert.equal(batchable(secret('s', { versionStage: 'v' })), false);
  });
});

describe('Regions ARNs name', () => {
  test("an ARN's Region, when it is one; nothing for names or other shapes", () => {
    assert.equal(arnRegion(param(SSM_ARN)), 'eu-west-1');
    assert.equal(arnRegion(secret(SM_ARN)), 'us-east-1');
    assert.equal(arnRegion(param('/app/x')), undefined);
    assert.equal(arnRegion(secret('prod/db')), undefined);
    for (const [id, region] of [
      ['arn:aws-us-gov:ssm:us-gov-west-1:123456789012:parameter/x', 'us-gov-west-1'],
      ['arn:aws-cn:ssm:cn-north-1:123456789012:parameter/x', 'cn-north-1'],
      ['arn:aws:ssm:ap-southeast-12:123456789012:parameter/x', 'ap-southeast-12'],
    ] as const) {
      assert.equal(arnRegion(param(id)), region, id);
    }
    for (const id of [
      'arn:aws:ssm::123456789012:parameter/x',
      'arn:aws:ssm:EU-WEST-1:123456789012:parameter/x',
      'arn:aws:ssm:eu-west-123:123456789012:parameter/x',
      'arn:aws:ssm:euwest1:123456789012:parameter/x',
      'arn:aws:ssm:x-eu-west-1:123456789012:parameter/x',
      'arn:aws:ssm:eu-west-1-:123456789012:parameter/x',
      'arn:aws:ssm:eu-west-1:12345678901:parameter/x',
      'arn:aws:ssm:eu-west-1:1234567890123:parameter/x',
      'arn:aws:ssm:eu-west-1:12345678901a:parameter/x',
      'arn:aws:ssm:eu-west-1:123456789012:document/x',
      'arn:aws:secretsmanager:eu-west-1:123456789012:parameter/x',
      'arn:awsx!:ssm:eu-west-1:123456789012:parameter/x',
      'xarn:aws:ssm:eu-west-1:123456789012:parameter/x',
    ]) {
      assert.equal(arnRegion(param(id)), undefined, id);
    }
    assert.equal(arnRegion(secret('arn:aws:secretsmanager:eu-west-1:123456789012:parameter/x')), undefined);
    assert.equal(arnRegion(secret('arn:aws:secretsmanager:eu-west-1:123:secret:x')), undefined);
  });
});

describe('one id-matching function', () => {
  const s: WireSecretValue = { Name: 'prod/db', ARN: SM_ARN, SecretString: 'x' };
  test('secrets: the name, the full ARN, or the ARN less exactly its `-` and six characters', () => {
    const cases: Array<[string, boolean]> = [
      ['prod/db', true],
      [SM_ARN, true],
      [SM_ARN.slice(0, -7), true],
      [SM_ARN.slice(0, -8), false],
      [SM_ARN.slice(0, -6), false],
      [`${SM_ARN.slice(0, -7)}x`, false],
      ['prod/db-AbCdEf', false],
      ['prod', false],
      // As long as a partial ARN, but not the ARN's own beginning.
      [`arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/dX`, false],
    ];
    for (const [id, expected] of cases) assert.equal(answers('secretsmanager', s, id), expected, id);
    // Where the suffix should begin, a character other than '-'.
    const noDash: WireSecretValue = { Name: 'p', ARN: `${SM_ARN.slice(0, -7)}xAbCdEf` };
    assert.equal(answers('secretsmanager', noDash, SM_ARN.slice(0, -7)), false);
    // A name that looks like an ARN's beginning is matched as a name only.
    const named: WireSecretValue = { Name: 'a', ARN: 'a-AbCdEf' };
    assert.equal(answers('secretsmanager', named, 'a'), true);
    assert.equal(
      answers('secretsmanager', { Name: 'zz', ARN: 'q-AbCdEf' }, 'q'),
      false,
      'not an ARN: no partial match',
    );
    assert.equal(answers('secretsmanager', { Name: 'zz' }, 'arn:x'), false);
  });

  test('parameters: the name or ARN with the selector the answer carries', () => {
    const p: WireParameter = { Name: '/app/x', Type: 'String', Value: 'v', ARN: SSM_ARN, Selector: ':3' };
    assert.equal(answers('ssm', p, '/app/x:3'), true);
    assert.equal(answers('ssm', p, `${SSM_ARN}:3`), true);
    assert.equal(answers('ssm', p, '/app/x'), false);
    assert.equal(answers('ssm', p, SSM_ARN), false);
    const plainP: WireParameter = { Name: '/app/x', Type: 'String', Value: 'v' };
    assert.equal(answers('ssm', plainP, '/app/x'), true);
    assert.equal(answers('ssm', plainP, SSM_ARN), false, 'no ARN in the answer: the name only');
  });
});
