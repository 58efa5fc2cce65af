// The pieces of roleArn and cross-Region reads that are pure functions: the strict XML reader and the
// Query protocol for STS (a good answer, an error answer, garbage), the role session name, the cache keys
// (no role's entry answers another's read) and the Region an ARN names.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { roleSessionName } from '../src/aws/session-name.ts';
import { parseXml, queryProtocol, XmlError, xmlChild } from '../src/aws/sts.ts';
import { arnRegion, cacheKey, type ItemRequest, pathKey, plainKey } from '../src/items.ts';

const ASSUMED = `<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleResult>
    <SourceIdentity>dev&amp;ops</SourceIdentity>
    <AssumedRoleUser>
      <Arn>arn:aws:sts::123456789012:assumed-role/demo/pscache-host</Arn>
      <AssumedRoleId>ARO123EXAMPLE123:pscache-host</AssumedRoleId>
    </AssumedRoleUser>
    <Credentials>
      <AccessKeyId>ASIAIOSFODNN7EXAMPLE</AccessKeyId>
      <SecretAccessKey>wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY</SecretAccessKey>
      <SessionToken>AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA==</SessionToken>
      <Expiration>2030-07-15T23:28:33.359Z</Expiration>
    </Credentials>
    <PackedPolicySize>6</PackedPolicySize>
  </AssumeRoleResult>
  <ResponseMetadata><RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId></ResponseMetadata>
</AssumeRoleResponse>`;

describe('the Query protocol for STS', () => {
  test('the request: Action, Version and the parameters, form-encoded as the SDKs do', () => {
    assert.deepEqual(queryProtocol.headers('AssumeRole'), {
      'Content-Type': 'application/x-www-form-urlencoded; charset=utf-8',
    });
    assert.equal(
      queryProtocol.body('AssumeRole', {
        RoleArn: 'arn:aws:iam::123456789012:role/a b(c)',
        RoleSessionName: 'pscache-x',
        DurationSeconds: undefined,
      }),
      'Action=AssumeRole&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fa%20b%28c%29&RoleSessionName=pscache-x',
    );
  });

  test('a good answer: the result as an object, entities decoded', () => {
    const out = queryProtocol.success('AssumeRole', `<?xml version="1.0" encoding="UTF-8"?>\n${ASSUMED}\n`);
    assert.ok('value' in out, JSON.stringify(out));
    const v = out.value as {
      Credentials: Record<string, string>;
      AssumedRoleUser: Record<string, string>;
      SourceIdentity: string;
    };
    assert.equal(v.Credentials['AccessKeyId'], 'ASIAIOSFODNN7EXAMPLE');
    assert.equal(v.Credentials['Expiration'], '2030-07-15T23:28:33.359Z');
    assert.match(v.Credentials['SessionToken']!, /^AQoDYXdzEPT/);
    assert.equal(v.AssumedRoleUser['AssumedRoleId'], 'ARO123EXAMPLE123:pscache-host');
    assert.equal(v.SourceIdentity, 'dev&ops');
  });

  test('an error answer: its code and message', () => {
    const xml = `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <Error><Type>Sender</Type><Code>AccessDenied</Code>
    <Message>User: arn:aws:iam::123456789012:user/x is not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::123456789012:role/y &lt;denied&gt;</Message>
  </Error>
  <RequestId>4d8f1f6e-1111-2222-3333-444455556666</RequestId>
</ErrorResponse>`;
    assert.deepEqual(queryProtocol.error(xml), {
      code: 'AccessDenied',
      message:
        'User: arn:aws:iam::123456789012:user/x is not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::123456789012:role/y <denied>',
    });
    assert.deepEqual(queryProtocol.error('<html>Bad Gateway</html'), {}, 'garbage names nothing');
    assert.deepEqual(queryProtocol.error(''), {});
  });

  test('garbage, another operation, or a result missing: malformed, never a value, never the body echoed', () => {
    for (const body of [
      '',
      'Service Unavailable',
      '{"Credentials":{}}',
      '<AssumeRoleResponse><AssumeRoleResult><Credentials>',
      '<AssumeRoleResponse></AssumeRoleResult></AssumeRoleResponse>',
      '<GetCallerIdentityResponse><GetCallerIdentityResult/></GetCallerIdentityResponse>',
      '<AssumeRoleResponse><ResponseMetadata/></AssumeRoleResponse>',
      `${ASSUMED}<extra/>`,
      '<AssumeRoleResponse><AssumeRoleResult><A>1</A><A>2</A></AssumeRoleResult></AssumeRoleResponse>',
      '<AssumeRoleResponse><AssumeRoleResult>text<A>1</A></AssumeRoleResult></AssumeRoleResponse>',
      '<AssumeRoleResponse><AssumeRoleResult><!-- hi --></AssumeRoleResult></AssumeRoleResponse>',
      '<AssumeRoleResponse><AssumeRoleResult><A><![CDATA[x]]></A></AssumeRoleResult></AssumeRoleResponse>',
      '<AssumeRoleResponse><AssumeRoleResult><A>a & b</A></AssumeRoleResult></AssumeRoleResponse>',
      '<AssumeRoleResponse><AssumeRoleResult><A>&bogus;</A></AssumeRoleResult></AssumeRoleResponse>',
      '<AssumeRoleResponse><AssumeRoleResult><A>&#0;</A></AssumeRoleResult></AssumeRoleResponse>',
    ]) {
      const out = queryProtocol.success('AssumeRole', body);
      assert.ok('malformed' in out, `${body} -> ${JSON.stringify(out)}`);
      if (body.length > 0) assert.ok(!out.malformed.includes(body), 'the body is not echoed');
    }
  });

  test('the reader: attributes, self-closing elements, prefixes, numeric entities; depth is bounded', () => {
    const e = parseXml(`<a x="1" y='2'><b/><ns:c>&#65;&#x42;&gt;</ns:c></a>`);
    assert.equal(e.name, 'a');
    assert.equal(xmlChild(e, 'b')?.text, '');
    assert.equal(xmlChild(e, 'c')?.text, 'AB>');
    assert.throws(() => parseXml(`${'<a>'.repeat(40)}${'</a>'.repeat(40)}`), XmlError);
    assert.throws(() => parseXml('<a></b>'), /closed by another element/);
    assert.throws(() => parseXml('<a>'), /not closed/);
    assert.throws(() => parseXml('<!DOCTYPE a><a/>'), XmlError);
  });
});

describe('the role session name', () => {
  test('pscache and the function or host name, in what STS accepts, at most 64 characters', () => {
    assert.equal(roleSessionName('my-function'), 'pscache-my-function');
    assert.equal(roleSessionName('ip-10-0-0-1.ec2.internal'), 'pscache-ip-10-0-0-1.ec2.internal');
    assert.equal(roleSessionName('a b/c:d'), 'pscache-a-b-c-d');
    assert.equal(roleSessionName(''), 'pscache');
    assert.equal(roleSessionName(undefined), 'pscache');
    const long = roleSessionName('x'.repeat(100));
    assert.equal(long.length, 64);
    assert.match(long, /^[\w+=,.@-]{2,64}$/);
  });
});

describe('cache keys by role', () => {
  const A = 'arn:aws:iam::123456789012:role/a';
  const B = 'arn:aws:iam::123456789012:role/b';
  const items: ItemRequest[] = [
    { service: 'secretsmanager', secretId: 'db' },
    { service: 'secretsmanager', secretId: 'db', versionStage: 'AWSPREVIOUS' },
    { service: 'ssm', name: '/p', withDecryption: false },
    { service: 'ssm', name: '/p', withDecryption: true },
    { service: 'ssm', name: '/p', version: '2', withDecryption: false },
  ];

  test('the same item under no role, role A and role B: three keys, and three plain keys', () => {
    for (const item of items) {
      const keys = [undefined, A, B].map((roleArn) =>
        cacheKey(roleArn === undefined ? item : { ...item, roleArn }),
      );
      assert.equal(new Set(keys).size, 3, JSON.stringify(item));
      if (item.service === 'ssm') {
        const plain = [undefined, A, B].map((roleArn) =>
          plainKey(roleArn === undefined ? item : { ...item, roleArn }),
        );
        assert.equal(new Set(plain).size, 3);
        for (const p of plain) assert.ok(!keys.includes(p!));
      }
    }
    const all = items.flatMap((item) =>
      [undefined, A, B].map((roleArn) => cacheKey({ ...item, roleArn } as ItemRequest)),
    );
    assert.equal(new Set(all).size, items.length * 3, 'no two requests share a key');
  });

  test('path listings likewise; a role ARN cannot be spelled into a name to reach another key', () => {
    const p = { path: '/app/', recursive: true, withDecryption: false };
    assert.notEqual(pathKey(p), pathKey({ ...p, roleArn: A }));
    assert.notEqual(pathKey({ ...p, roleArn: A }), pathKey({ ...p, roleArn: B }));
    // NUL separates the parts, and neither a role ARN nor a name (the server refuses control characters) holds one.
    assert.notEqual(
      cacheKey({ service: 'secretsmanager', secretId: 'x', roleArn: A }),
      cacheKey({ service: 'secretsmanager', secretId: `${A}x` }),
    );
  });
});

describe('the Region an ARN names', () => {
  const sm = (secretId: string): ItemRequest => ({ service: 'secretsmanager', secretId });
  const ssm = (name: string): ItemRequest => ({ service: 'ssm', name, withDecryption: false });
  test('secret and parameter ARNs, references given as parameter ARNs, other partitions', () => {
    assert.equal(
      arnRegion(sm('arn:aws:secretsmanager:eu-west-1:123456789012:secret:db-AbCdEf')),
      'eu-west-1',
    );
    assert.equal(arnRegion(sm('arn:aws:secretsmanager:eu-west-1:123456789012:secret:db')), 'eu-west-1');
    assert.equal(arnRegion(ssm('arn:aws:ssm:ap-south-2:123456789012:parameter/app/x')), 'ap-south-2');
    assert.equal(
      arnRegion(ssm('arn:aws:ssm:us-west-2:123456789012:parameter/aws/reference/secretsmanager/db')),
      'us-west-2',
    );
    assert.equal(arnRegion(ssm('arn:aws-cn:ssm:cn-north-1:123456789012:parameter/x')), 'cn-north-1');
    assert.equal(
      arnRegion(ssm('arn:aws-us-gov:ssm:us-gov-west-1:123456789012:parameter/x')),
      'us-gov-west-1',
    );
  });
  test('names, other services, and Regions that are not Region names: none', () => {
    assert.equal(arnRegion(sm('prod/db')), undefined);
    assert.equal(arnRegion(ssm('/app/x')), undefined);
    assert.equal(arnRegion(ssm('arn:aws:secretsmanager:eu-west-1:123456789012:secret:db')), undefined);
    assert.equal(arnRegion(sm('arn:aws:ssm:eu-west-1:123456789012:parameter/x')), undefined);
    assert.equal(arnRegion(sm('arn:aws:secretsmanager::123456789012:secret:db')), undefined);
    assert.equal(arnRegion(sm('arn:aws:secretsmanager:evil.example.com:123456789012:secret:db')), undefined);
    assert.equal(arnRegion(sm('arn:aws:secretsmanager:EU-WEST-1:123456789012:secret:db')), undefined);
  });
});
