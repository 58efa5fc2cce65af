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
