// Secrets Manager operations pscache uses, with their answers checked before anyone trusts them.
import type { AwsJsonClient, CallOptions } from './client.ts';
import { AwsCallError, type WireBatchSecretError, type WireSecretValue } from './types.ts';

export interface GetSecretValueInput {
  secretId: string;
  versionId?: string;
  versionStage?: string;
}

export interface BatchGetSecretValueOutput {
  SecretValues: WireSecretValue[];
  Errors: WireBatchSecretError[];
}

function malformed(operation: string, what: string): AwsCallError {
  return new AwsCallError('MalformedResponse', `${operation} answer ${what}`, 'malformed', 200);
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

const optString = (v: unknown) => v === undefined || typeof v === 'string';

function isSecretValue(v: unknown): v is WireSecretValue {
  if (!isObject(v)) return false;
  const fieldsOk =
    optString(v['SecretString']) &&
    optString(v['SecretBinary']) &&
    optString(v['Name']) &&
    optString(v['ARN']) &&
    optString(v['VersionId']) &&
    (v['CreatedDate'] === undefined || typeof v['CreatedDate'] === 'number') &&
    (v['VersionStages'] === undefined ||
      (Array.isArray(v['VersionStages']) && v['VersionStages'].every((s) => typeof s === 'string')));
  const identified = ['SecretString', 'SecretBinary', 'Name', 'ARN'].some((k) => v[k] !== undefined);
  return fieldsOk && identified;
}

function isBatchError(v: unknown): v is WireBatchSecretError {
  return isObject(v) && optString(v['SecretId']) && optString(v['ErrorCode']) && optString(v['Message']);
}

export async function getSecretValue(
  client: AwsJsonClient,
  input: GetSecretValueInput,
  opts?: CallOptions,
): Promise<WireSecretValue> {
  const out = await client.call<unknown>(
    'GetSecretValue',
    {
      SecretId: input.secretId,
      ...(input.versionId !== undefined ? { VersionId: input.versionId } : {}),
      ...(input.versionStage !== undefined ? { VersionStage: input.versionStage } : {}),
    },
    opts,
  );
  if (!isSecretValue(out)) throw malformed('GetSecretValue', 'is not a secret value');
  return out;
}

/** One BatchGetSecretValue call by id: 1..20 ids. Per-secret failures come back in Errors. */
export async function batchGetSecretValue(
  client: AwsJsonClient,
  secretIds: readonly string[],
  opts?: CallOptions,
): Promise<BatchGetSecretValueOutput> {
  if (secretIds.length < 1 || secretIds.length > 20) {
    throw new RangeError(`BatchGetSecretValue takes 1 to 20 ids, got ${secretIds.length}`);
  }
  const out = await client.call<Record<string, unknown>>(
    'BatchGetSecretValue',
    { SecretIdList: secretIds },
    opts,
  );
  return batchOutput(out);
}

export interface SecretFilter {
  /** `tag-key`, `name`, ... (Secrets Manager's filter keys). */
  Key: string;
  Values: string[];
}

/** One page of BatchGetSecretValue by filters (tag discovery): at most `maxResults` (1..20) secrets. */
export async function batchGetSecretValueByFilters(
  client: AwsJsonClient,
  filters: readonly SecretFilter[],
  page: { maxResults: number; nextToken?: string | undefined },
  opts?: CallOptions,
): Promise<BatchGetSecretValueOutput & { NextToken?: string }> {
  if (page.maxResults < 1 || page.maxResults > 20) {
    throw new RangeError(`BatchGetSecretValue takes MaxResults 1 to 20, got ${page.maxResults}`);
  }
  const out = await client.call<Record<string, unknown>>(
    'BatchGetSecretValue',
    {
      Filters: filters,
      MaxResults: page.maxResults,
      ...(page.nextToken !== undefined ? { NextToken: page.nextToken } : {}),
    },
    opts,
  );
  const next = out['NextToken'];
  if (next !== undefined && next !== null && typeof next !== 'string') {
    throw malformed('BatchGetSecretValue', 'has a NextToken that is not a string');
  }
  return { ...batchOutput(out), ...(typeof next === 'string' && next !== '' ? { NextToken: next } : {}) };
}

function batchOutput(out: Record<string, unknown>): BatchGetSecretValueOutput {
  const values = out['SecretValues'] ?? [];
  const errors = out['Errors'] ?? [];
  if (!Array.isArray(values) || !values.every(isSecretValue)) {
    throw malformed('BatchGetSecretValue', 'has a SecretValues list that is not a list of secret values');
  }
  if (!Array.isArray(errors) || !errors.every(isBatchError)) {
    throw malformed('BatchGetSecretValue', 'has an Errors list that is not a list of errors');
  }
  return { SecretValues: values, Errors: errors };
}
