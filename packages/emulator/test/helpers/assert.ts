// Assertions shared by the emulator's tests.
import assert from 'node:assert/strict';

/** Runs `fn`, expecting it to throw an error named `name`; returns the error for further checks. */
export async function rejects(
  fn: () => Promise<unknown>,
  name: string,
): Promise<Error & Record<string, unknown>> {
  try {
    await fn();
  } catch (err) {
    const e = err as Error & Record<string, unknown>;
    assert.equal(e.name, name, `expected ${name}, got ${e.name}: ${e.message}`);
    return e;
  }
  assert.fail(`expected ${name}, but the call succeeded`);
}
