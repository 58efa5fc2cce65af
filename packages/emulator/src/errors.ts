// AWS error documents as the JSON 1.1 services send them, and typed readers for request fields.

/** An error answer. SSM spells the text field `message`; Secrets Manager spells it `Message`. */
export class AwsError extends Error {
  constructor(
    readonly type: string,
    message: string | undefined,
    readonly status = 400,
    readonly messageKey: 'message' | 'Message' = 'message',
  ) {
    super(message ?? '');
    this.text = message;
  }
  readonly text: string | undefined;

  body(): Record<string, string> {
    const out: Record<string, string> = { __type: this.type };
    if (this.text !== undefined) out[this.messageKey] = this.text;
    return out;
  }
}

type Json = Record<string, unknown>;

/** Field name as AWS writes it in validation messages (`Name` -> `name`). */
const field = (key: string): string => key.charAt(0).toLowerCase() + key.slice(1);

const serialization = (key: string, want: string): AwsError =>
  new AwsError('SerializationException', `Expected ${want} for ${key}`);

export const validation = (message: string): AwsError => new AwsError('ValidationException', message);

/**
 * A parsed request body with typed accessors: wrong JSON types answer SerializationException,
 * constraint violations ValidationException (the framework-level errors of both services).
 */
export class Input {
  constructor(private readonly o: Json) {}

  static parse(body: Buffer): Input {
    const text = body.length === 0 ? '{}' : body.toString('utf8');
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      throw new AwsError('SerializationException', 'Request body is not valid JSON');
    }
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      throw new AwsError('SerializationException', 'Request body must be a JSON object');
    }
    return new Input(value as Json);
  }

  has(key: string): boolean {
    return this.o[key] !== undefined && this.o[key] !== null;
  }

  optString(key: string, max = 2048, min = 1): string | undefined {
    const v = this.o[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'string') throw serialization(key, 'a string');
    if (v.length < min || v.length > max) {
      throw validation(
        `1 validation error detected: Value at '${field(key)}' failed to satisfy constraint: Member must have length between ${min} and ${max}`,
      );
    }
    return v;
  }

  string(key: string, max = 2048, min = 1): string {
    const v = this.optString(key, max, min);
    if (v === undefined) {
      throw validation(
        `1 validation error detected: Value null at '${field(key)}' failed to satisfy constraint: Member must not be null`,
      );
    }
    return v;
  }

  optBool(key: string): boolean | undefined {
    const v = this.o[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'boolean') throw serialization(key, 'a boolean');
    return v;
  }

  optInt(key: string, min: number, max: number): number | undefined {
    const v = this.o[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'number' || !Number.isInteger(v)) throw serialization(key, 'an integer');
    if (v < min || v > max) {
      throw validation(
        `1 validation error detected: Value '${v}' at '${field(key)}' failed to satisfy constraint: Member must have value between ${min} and ${max}`,
      );
    }
    return v;
  }

  optStringList(key: string, min: number, max: number): string[] | undefined {
    const v = this.o[key];
    if (v === undefined || v === null) return undefined;
    if (!Array.isArray(v) || v.some((x) => typeof x !== 'string'))
      throw serialization(key, 'a list of strings');
    if (v.length < min || v.length > max) {
      throw validation(
        `1 validation error detected: Value at '${field(key)}' failed to satisfy constraint: Member must have length between ${min} and ${max}`,
      );
    }
    return v as string[];
  }

  stringList(key: string, min: number, max: number): string[] {
    const v = this.optStringList(key, min, max);
    if (v === undefined) {
      throw validation(
        `1 validation error detected: Value null at '${field(key)}' failed to satisfy constraint: Member must not be null`,
      );
    }
    return v;
  }

  /** A list of objects (filters), each exposed as an Input. */
  optObjectList(key: string): Input[] | undefined {
    const v = this.o[key];
    if (v === undefined || v === null) return undefined;
    if (!Array.isArray(v) || v.some((x) => x === null || typeof x !== 'object' || Array.isArray(x))) {
      throw serialization(key, 'a list of objects');
    }
    return (v as Json[]).map((x) => new Input(x));
  }

  /** Raw string values of the given keys, for fault and deny matching; never throws. */
  peekStrings(key: string): string[] {
    const v = this.o[key];
    if (typeof v === 'string') return [v];
    if (Array.isArray(v)) return v.filter((x): x is string => typeof x === 'string');
    return [];
  }
}
