// Success bodies in the official extension's drop-in shape: every field present (null when absent),
// keys in the Go SDK's order, ISO timestamps with milliseconds, and "ResultMetadata": {}.
import type { WireParameter, WireSecretValue } from './aws/types.ts';

/** Epoch seconds (AWS JSON 1.1) -> ISO 8601 with milliseconds, as the Go SDK's encoding/json prints it. */
export function isoFromEpochSeconds(seconds: number | undefined): string | null {
  if (typeof seconds !== 'number' || !Number.isFinite(seconds)) return null;
  return new Date(Math.round(seconds * 1000)).toISOString();
}

const orNull = <T>(v: T | undefined): T | null => (v === undefined ? null : v);

/** The `Parameter` object, alphabetical keys, absent fields as null. */
export function parameterShape(p: WireParameter) {
  return {
    ARN: orNull(p.ARN),
    DataType: orNull(p.DataType),
    LastModifiedDate: isoFromEpochSeconds(p.LastModifiedDate),
    Name: p.Name,
    Selector: orNull(p.Selector),
    SourceResult: orNull(p.SourceResult),
    Type: p.Type,
    Value: orNull(p.Value),
    Version: orNull(p.Version),
  };
}

/** GET /systemsmanager/parameters/get body. */
export function parameterBody(p: WireParameter): string {
  return JSON.stringify({ Parameter: parameterShape(p), ResultMetadata: {} });
}

/** The secret fields of GetSecretValue, in the Go SDK's order. */
export function secretShape(s: WireSecretValue) {
  return {
    ARN: orNull(s.ARN),
    CreatedDate: isoFromEpochSeconds(s.CreatedDate),
    Name: orNull(s.Name),
    SecretBinary: orNull(s.SecretBinary),
    SecretString: orNull(s.SecretString),
    VersionId: orNull(s.VersionId),
    VersionStages: orNull(s.VersionStages),
  };
}

/** GET /secretsmanager/get body. */
export function secretBody(s: WireSecretValue): string {
  return JSON.stringify({ ...secretShape(s), ResultMetadata: {} });
}

// Batch answers are put together from the cached single-item bodies above, without parsing them again:
// the bytes of an item are a slice of its body.
const PARAMETER_HEAD = Buffer.from('{"Parameter":');
const TAIL = Buffer.from(',"ResultMetadata":{}}');
const CLOSE = Buffer.from('}');

/** A cached body that is not what parameterBody or secretBody rendered: a bug, never an upstream failure. */
export class BodyShapeError extends Error {
  override name = 'BodyShapeError';
}

const endsWithTail = (body: Buffer) =>
  body.length > TAIL.length && body.subarray(body.length - TAIL.length).equals(TAIL);

/** The `Parameter` object of a parameterBody, as bytes (a view of `body`). */
export function parameterItem(body: Buffer): Buffer {
  if (!endsWithTail(body) || !body.subarray(0, PARAMETER_HEAD.length).equals(PARAMETER_HEAD)) {
    throw new BodyShapeError('a cached parameter body is not in the shape parameterBody renders');
  }
  return body.subarray(PARAMETER_HEAD.length, body.length - TAIL.length);
}

/**
 * A secretBody without its ResultMetadata, as two views of `body`: everything before `,"ResultMetadata"`,
 * then the closing brace.
 */
export function secretItem(body: Buffer): [Buffer, Buffer] {
  if (!endsWithTail(body) || body[0] !== 0x7b) {
    throw new BodyShapeError('a cached secret body is not in the shape secretBody renders');
  }
  return [body.subarray(0, body.length - TAIL.length), CLOSE];
}

const NAME_KEY = Buffer.from(',"Name":"');

/**
 * The Name of a `Parameter` object's bytes. JSON.stringify escapes every `"` inside a string, so the
 * first `,"Name":"` is the key itself (ARN and DataType, before it, cannot hold it unescaped); the value
 * runs to the next unescaped quote and is parsed alone.
 */
export function parameterName(item: Buffer): string {
  const at = item.indexOf(NAME_KEY);
  if (at === -1) throw new BodyShapeError('a cached parameter has no Name');
  const start = at + NAME_KEY.length - 1;
  let end = start + 1;
  while (end < item.length && item[end] !== 0x22) end += item[end] === 0x5c ? 2 : 1;
  if (end >= item.length) throw new BodyShapeError('a cached parameter Name does not end');
  return JSON.parse(item.toString('utf8', start, end + 1)) as string;
}
