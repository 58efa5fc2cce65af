// SSM Parameter Store operations pscache uses, with their answers checked before anyone trusts them.
import type { AwsJsonClient, CallOptions } from './client.ts';
import { AwsCallError, type WireParameter } from './types.ts';

export interface GetParameterInput {
  name: string;
  /** Appended as `name:version`. Give at most one of version and label. */
  version?: string | number;
  /** Appended as `name:label`. */
  label?: string;
  withDecryption: boolean;
}

export interface GetParametersByPathInput {
  path: string;
  recursive: boolean;
  withDecryption: boolean;
  nextToken?: string;
  /** 1..10; the service's default (10) when absent. */
  maxResults?: number;
}

export interface GetParametersOutput {
  Parameters: WireParameter[];
  InvalidParameters: string[];
}

export interface GetParametersByPathOutput {
  Parameters: WireParameter[];
  NextToken?: string;
}

/** The `Name` GetParameter takes: `name`, `name:version` or `name:label`. */
export function parameterSelector(input: Pick<GetParameterInput, 'name' | 'version' | 'label'>): string {
  if (input.version !== undefined) return `${input.name}:${input.version}`;
  if (input.label !== undefined) return `${input.name}:${input.label}`;
  return input.name;
}

function malformed(operation: string, what: string): AwsCallError {
  return new AwsCallError('MalformedResponse', `${operation} answer ${what}`, 'malformed', 200);
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

function isParameter(v: unknown): v is WireParameter {
  return (
    isObject(v) &&
    typeof v['Name'] === 'string' &&
    typeof v['Type'] === 'string' &&
    (v['Value'] === undefined || typeof v['Value'] === 'string') &&
    (v['Version'] === undefined || typeof v['Version'] === 'number') &&
    (v['LastModifiedDate'] === undefined || typeof v['LastModifiedDate'] === 'number')
  );
}

function parameterList(operation: string, v: unknown): WireParameter[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v) || !v.every(isParameter)) {
    throw malformed(operation, 'has a Parameters list that is not a list of parameters');
  }
  return v;
}

export async function getParameter(
  client: AwsJsonClient,
  input: GetParameterInput,
  opts?: CallOptions,
): Promise<WireParameter> {
  const out = await client.call<Record<string, unknown>>(
    'GetParameter',
    { Name: parameterSelector(input), WithDecryption: input.withDecryption },
    opts,
  );
  const p = out['Parameter'];
  if (!isParameter(p)) throw malformed('GetParameter', 'has no Parameter with a Name and a Type');
  return p;
}

/** One GetParameters call: 1..10 names. Unknown names come back in InvalidParameters, not as an error. */
export async function getParameters(
  client: AwsJsonClient,
  names: readonly string[],
  withDecryption: boolean,
  opts?: CallOptions,
): Promise<GetParametersOutput> {
  if (names.length < 1 || names.length > 10) {
    throw new RangeError(`GetParameters takes 1 to 10 names, got ${names.length}`);
  }
  const out = await client.call<Record<string, unknown>>(
    'GetParameters',
    { Names: names, WithDecryption: withDecryption },
    opts,
  );
  const invalid = out['InvalidParameters'] ?? [];
  if (!Array.isArray(invalid) || !invalid.every((n) => typeof n === 'string')) {
    throw malformed('GetParameters', 'has an InvalidParameters list that is not a list of names');
  }
  return { Parameters: parameterList('GetParameters', out['Parameters']), InvalidParameters: invalid };
}

/** One page of GetParametersByPath. A page may be empty and still carry a NextToken. */
export async function getParametersByPath(
  client: AwsJsonClient,
  input: GetParametersByPathInput,
  opts?: CallOptions,
): Promise<GetParametersByPathOutput> {
  const out = await client.call<Record<string, unknown>>(
    'GetParametersByPath',
    {
      Path: input.path,
      Recursive: input.recursive,
      WithDecryption: input.withDecryption,
      ...(input.maxResults !== undefined ? { MaxResults: input.maxResults } : {}),
      ...(input.nextToken !== undefined ? { NextToken: input.nextToken } : {}),
    },
    opts,
  );
  const next = out['NextToken'];
  if (next !== undefined && next !== null && typeof next !== 'string') {
    throw malformed('GetParametersByPath', 'has a NextToken that is not a string');
  }
  return {
    Parameters: parameterList('GetParametersByPath', out['Parameters']),
    ...(typeof next === 'string' && next !== '' ? { NextToken: next } : {}),
  };
}
