// A parameter that changes type (docs/architecture.md, "What you can rely on"): what an answer of the new
// type drops, through the id it came by and the object's other ids, on the test's clock. Found by an
// independent attempt to break the core; what is not promised is said in the docs.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { PathListing } from '../src/loader/index.ts';
import {
  ARN,
  load,
  outcome,
  param,
  read,
  sec,
  setupCache as setup,
  start,
  str,
} from './helpers/cache-harness.ts';
import { settle } from './helpers/fake-time.ts';

test('a SecureString answer by ARN drops the String entry stored under the name', async () => {
  const s = setup();
  assert.equal(
    await load(s, () => s.cache.get(param('/a/x', false)), str('old-string', '/a/x')),
    'old-string miss',
  );
  assert.equal(
    await load(s, () => s.cache.get(param(`${ARN}/a/x`, true)), sec('new-secure', '/a/x')),
    'new-secure miss',
  );
  assert.equal(
    await read(s, () => s.cache.get(param('/a/x', true))),
    'LOADED(1)',
    'by name, decrypted: asked again',
  );
  assert.equal(await read(s, () => s.cache.get(param('/a/x', false))), 'LOADED(1)', 'by name: asked again');
});

test('a String answer by name drops the SecureString entry stored under the ARN', async () => {
  const s = setup();
  assert.equal(
    await load(s, () => s.cache.get(param(`${ARN}/a/x`, true)), sec('old-secure', '/a/x')),
    'old-secure miss',
  );
  assert.equal(
    await load(s, () => s.cache.get(param('/a/x', true)), str('new-string', '/a/x')),
    'new-string miss',
  );
  assert.equal(
    await read(s, () => s.cache.get(param(`${ARN}/a/x`, true))),
    'LOADED(1)',
    'by ARN: asked again',
  );
  assert.equal(
    await read(s, () => s.cache.get(param('/a/x', false))),
    'new-string hit',
    'the new type stays',
  );
});

test('a listing that shows the old type goes when an answer by ARN shows the new one', async () => {
  const s = setup();
  const p = { path: '/a', recursive: false, withDecryption: false };
  const L = {
    body: Buffer.from('L[/a/x=String old]'),
    items: [{ request: param('/a/x', false), loaded: str('old', '/a/x') }],
  };
  assert.equal(await load(s, () => s.cache.getPath(p), L), 'L[/a/x=String old] miss');
  assert.equal(await read(s, () => s.cache.getPath(p)), 'L[/a/x=String old] hit');
  assert.equal(
    await load(s, () => s.cache.get(param(`${ARN}/a/x`, true)), sec('now-secure', '/a/x')),
    'now-secure miss',
  );
  assert.equal(await read(s, () => s.cache.getPath(p)), 'LOADED(1)', 'the listing is asked again');
});

test('an answer of the same type by another id drops nothing', async () => {
  const s = setup();
  assert.equal(await load(s, () => s.cache.get(param('/a/x', false)), str('v', '/a/x')), 'v miss');
  assert.equal(await load(s, () => s.cache.get(param(`${ARN}/a/x`, false)), str('v', '/a/x')), 'v miss');
  assert.equal(await read(s, () => s.cache.get(param('/a/x', true))), 'v hit');
  assert.equal(await read(s, () => s.cache.get(param(`${ARN}/a/x`, true))), 'v hit');
});

test("a version's answer speaks for that version only: it drops no entry of the parameter's other type", async () => {
  const s = setup();
  assert.equal(
    await load(s, () => s.cache.get(param('/a/x', false)), str('now-string', '/a/x')),
    'now-string miss',
  );
  // Version 1 was written as a SecureString: its answer shows that type, not the parameter's now.
  assert.equal(
    await load(s, () => s.cache.get(param('/a/x', true, { version: '1' })), sec('v1-secure', '/a/x')),
    'v1-secure miss',
  );
  assert.equal(await read(s, () => s.cache.get(param('/a/x', true))), 'now-string hit');
  assert.equal(
    await read(s, () => s.cache.get(param(`${ARN}/a/x`, false))),
    'LOADED(1)',
    'never read by ARN',
  );
});

test('an answer of the new type leaves the entries of a version, which keeps the type it was written with', async () => {
  const s = setup();
  assert.equal(
    await load(s, () => s.cache.get(param('/a/x', true, { version: '1' })), sec('v1-secure', '/a/x')),
    'v1-secure miss',
  );
  assert.equal(
    await load(s, () => s.cache.get(param(`${ARN}/a/x`, false)), str('now-string', '/a/x')),
    'now-string miss',
  );
  assert.equal(await read(s, () => s.cache.get(param('/a/x', true, { version: '1' }))), 'v1-secure hit');
});

describe('loads in flight when the type changes store nothing of the old type, through any id', () => {
  test('an older load by name of the other flag, after the String answer came by ARN', async () => {
    const s = setup();
    assert.equal(
      await load(s, () => s.cache.get(param('/a/x', true)), sec('old-secure', '/a/x')),
      'old-secure miss',
    );
    const older = start(() => s.cache.get(param('/a/x', false)));
    await settle();
    const held = s.loader.loads.at(-1)!;
    assert.equal(
      await load(s, () => s.cache.get(param(`${ARN}/a/x`, false)), str('new-string', '/a/x')),
      'new-string miss',
    );
    held.resolve(sec('old-secure-enc', '/a/x'));
    assert.equal(await outcome(older), 'old-secure-enc miss', 'its own reader gets what it asked for');
    assert.equal(await read(s, () => s.cache.get(param('/a/x', false))), 'LOADED(1)', 'but it is not stored');
  });

  test('an older load by ARN of the other flag, after the String answer came by name', async () => {
    const s = setup();
    assert.equal(
      await load(s, () => s.cache.get(param(`${ARN}/a/x`, true)), sec('old-secure', '/a/x')),
      'old-secure miss',
    );
    const older = start(() => s.cache.get(param(`${ARN}/a/x`, false)));
    await settle();
    const held = s.loader.loads.at(-1)!;
    assert.equal(
      await load(s, () => s.cache.get(param('/a/x', false)), str('new-string', '/a/x')),
      'new-string miss',
    );
    held.resolve(sec('old-secure-enc', '/a/x'));
    await outcome(older);
    assert.equal(await read(s, () => s.cache.get(param(`${ARN}/a/x`, false))), 'LOADED(1)');
  });

  test('an older load by ARN of the old String, after a listing showed a SecureString', async () => {
    const s = setup();
    assert.equal(
      await load(s, () => s.cache.get(param('/a/x', false)), str('old-string', '/a/x')),
      'old-string miss',
    );
    const older = start(() => s.cache.get(param(`${ARN}/a/x`, false)));
    await settle();
    const held = s.loader.loads.at(-1)!;
    const listing: PathListing = {
      body: Buffer.from('L[/a/x=Secure]'),
      items: [{ request: param('/a/x', true), loaded: sec('new-secure', '/a/x') }],
    };
    assert.equal(
      await load(s, () => s.cache.getPath({ path: '/a', recursive: false, withDecryption: true }), listing),
      'L[/a/x=Secure] miss',
    );
    assert.equal(
      await read(s, () => s.cache.get(param('/a/x', false))),
      'LOADED(1)',
      "the name's String goes",
    );
    held.resolve(str('old-string', '/a/x'));
    await outcome(older);
    assert.equal(
      await read(s, () => s.cache.get(param(`${ARN}/a/x`, true))),
      'LOADED(1)',
      'nor is it stored by ARN',
    );
  });
});
