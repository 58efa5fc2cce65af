// Secrets Manager operations (secretsmanager.*) over the in-memory state.
import { randomUUID } from 'node:crypto';
import { accessDenied, epoch, type Handler, type OpContext } from './context.ts';
import { AwsError, type Input } from './errors.ts';
import { MAX_TAGS, type Secret, type SecretVersion, tagProblem, validSecretName } from './state.ts';

// Secrets Manager spells the error text field `Message`.
const fail = (type: string, message: string) => new AwsError(type, message, 400, 'Message');
const notFound = () => fail('ResourceNotFoundException', "Secrets Manager can't find the specified secret.");
const markedForDeletion = () =>
  fail(
    'InvalidRequestException',
    "You can't perform this operation on the secret because it was marked for deletion.",
  );
const invalidParameter = (m: string) => fail('InvalidParameterException', m);

function checkDenied(ctx: OpContext, id: string, action: string): void {
  if (ctx.deny.empty) return;
  const s = ctx.state.findSecret(id);
  if (ctx.deny.denies(s ? [id, s.name, s.arn] : [id])) {
    throw accessDenied(ctx, action, s?.arn ?? id, 'Message');
  }
}

function find(ctx: OpContext, id: string): Secret {
  const s = ctx.state.findSecret(id);
  if (!s) throw notFound();
  return s;
}

function findLive(ctx: OpContext, id: string): Secret {
  const s = find(ctx, id);
  if (s.deletionDate !== undefined) throw markedForDeletion();
  return s;
}

/** The version a read asks for; VersionStage defaults to AWSCURRENT; when both are given they must agree. */
function selectVersion(s: Secret, versionId: string | undefined, stage: string | undefined): SecretVersion {
  if (versionId !== undefined) {
    const v = s.versions.find((x) => x.id === versionId);
    if (!v || (stage !== undefined && !v.stages.includes(stage))) {
      const label = stage === undefined ? '' : ` and staging label: ${stage}`;
      throw fail(
        'ResourceNotFoundException',
        `Secrets Manager can't find the specified secret value for VersionId: ${versionId}${label}`,
      );
    }
    return v;
  }
  const want = stage ?? 'AWSCURRENT';
  const v = s.versions.find((x) => x.stages.includes(want));
  if (!v) {
    throw fail(
      'ResourceNotFoundException',
      `Secrets Manager can't find the specified secret value for staging label: ${want}`,
    );
  }
  return v;
}

function valueOut(s: Secret, v: SecretVersion): Record<string, unknown> {
  const out: Record<string, unknown> = { ARN: s.arn, CreatedDate: epoch(v.created), Name: s.name };
  if (v.secretBinary !== undefined) out['SecretBinary'] = v.secretBinary.toString('base64');
  if (v.secretString !== undefined) out['SecretString'] = v.secretString;
  out['VersionId'] = v.id;
  out['VersionStages'] = [...v.stages];
  return out;
}

function touch(ctx: OpContext, s: Secret): void {
  s.lastAccessed = ctx.now;
}

interface NewValue {
  secretString?: string;
  secretBinary?: Buffer;
}

/** SecretString / SecretBinary of a write; at most one. */
function readValue(input: Input): NewValue | undefined {
  const secretString = input.optString('SecretString', 65536);
  const binary = input.optString('SecretBinary', 87384);
  if (secretString !== undefined && binary !== undefined) {
    throw invalidParameter(
      "You can't specify both a binary secret value and a string secret value in the same secret.",
    );
  }
  if (secretString !== undefined) return { secretString };
  if (binary !== undefined) {
    if (binary.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(binary)) {
      throw new AwsError('SerializationException', 'SecretBinary must be base64');
    }
    return { secretBinary: Buffer.from(binary, 'base64') };
  }
  return undefined;
}

function sameValue(v: SecretVersion, n: NewValue): boolean {
  if (n.secretString !== undefined) return v.secretString === n.secretString;
  return (
    v.secretBinary !== undefined && n.secretBinary !== undefined && v.secretBinary.equals(n.secretBinary)
  );
}

/** CreateSecret's `Tags`: `[{Key, Value}]`, at most MAX_TAGS, each key once. */
function readTags(input: Input): Map<string, string> {
  const tags = new Map<string, string>();
  const list = input.optObjectList('Tags') ?? [];
  if (list.length > MAX_TAGS) throw invalidParameter(`A secret can have at most ${MAX_TAGS} tags.`);
  for (const t of list) {
    const key = t.string('Key', 128);
    const value = t.optString('Value', 256, 0) ?? '';
    const problem = tagProblem(key, value);
    if (problem) throw invalidParameter(`Invalid tag ${key}: ${problem}.`);
    if (tags.has(key)) throw invalidParameter(`The tag key ${key} is given more than once.`);
    tags.set(key, value);
  }
  return tags;
}

const GetSecretValue: Handler = (input, ctx) => {
  const id = input.string('SecretId');
  const versionId = input.optString('VersionId', 64, 32);
  const stage = input.optString('VersionStage', 256);
  checkDenied(ctx, id, 'secretsmanager:GetSecretValue');
  const s = findLive(ctx, id);
  const v = selectVersion(s, versionId, stage);
  touch(ctx, s);
  return valueOut(s, v);
};

/** One secret's BatchGetSecretValue outcome: its value, or the per-secret error entry. */
function batchItem(ctx: OpContext, id: string, values: unknown[], errors: unknown[]): void {
  try {
    checkDenied(ctx, id, 'secretsmanager:GetSecretValue');
    const s = findLive(ctx, id);
    values.push(valueOut(s, selectVersion(s, undefined, undefined)));
    touch(ctx, s);
  } catch (err) {
    if (!(err instanceof AwsError)) throw err;
    // Per-secret failures never fail the call.
    errors.push({ SecretId: id, ErrorCode: err.type, Message: err.text ?? '' });
  }
}

/** The filter keys the emulator knows how to match; `all`, `primary-region`, `owning-service` it does not. */
const FILTER_ATTRIBUTES: Record<string, (s: Secret) => string[]> = {
  name: (s) => [s.name],
  // Not case-sensitive, unlike the others.
  description: (s) => (s.description === undefined ? [] : [s.description.toLowerCase()]),
  'tag-key': (s) => [...s.tags.keys()],
  'tag-value': (s) => [...s.tags.values()],
};
const FILTER_KEYS = [
  'description',
  'name',
  'tag-key',
  'tag-value',
  'primary-region',
  'owning-service',
  'all',
];
const FILTER_VALUE = /^!?[a-zA-Z0-9 :_@/+=.\-!]*$/;

interface SecretFilter {
  attributes: (s: Secret) => string[];
  /** Prefixes; a leading `!` negates. */
  values: string[];
  lower: boolean;
}

function readFilters(list: Input[]): SecretFilter[] {
  if (list.length > 10) throw invalidParameter('You can specify at most 10 filters.');
  return list.map((f) => {
    const key = f.string('Key', 32);
    if (!FILTER_KEYS.includes(key)) {
      throw new AwsError(
        'ValidationException',
        `1 validation error detected: Value '${key}' at 'filters.member.key' failed to satisfy constraint: Member must satisfy enum value set: [${FILTER_KEYS.join(', ')}]`,
      );
    }
    const attributes = FILTER_ATTRIBUTES[key];
    if (!attributes) {
      throw invalidParameter(
        `The filter key ${key} is not supported by the pscache emulator; use name, description, tag-key or tag-value.`,
      );
    }
    const values = f.optStringList('Values', 1, 10) ?? [];
    if (values.length === 0) throw invalidParameter(`The filter ${key} needs at least one value.`);
    for (const v of values) {
      if (v.length > 512 || !FILTER_VALUE.test(v)) throw invalidParameter(`Invalid filter value: ${v}`);
    }
    return { attributes, values, lower: key === 'description' };
  });
}

/** Prefix matches; values of one filter are ORed, filters ANDed, a leading `!` negates. */
function matches(s: Secret, filters: SecretFilter[]): boolean {
  return filters.every((f) => {
    const have = f.attributes(s);
    return f.values.some((raw) => {
      const negate = raw.startsWith('!');
      let prefix = negate ? raw.slice(1) : raw;
      if (f.lower) prefix = prefix.toLowerCase();
      const hit = have.some((a) => a.startsWith(prefix));
      return negate ? !hit : hit;
    });
  });
}

const BatchGetSecretValue: Handler = (input, ctx) => {
  const ids = input.optStringList('SecretIdList', 1, 20);
  const filterList = input.optObjectList('Filters');
  const maxResults = input.optInt('MaxResults', 1, 20);
  const nextToken = input.optString('NextToken', 4096);
  if (ids !== undefined && filterList !== undefined) {
    throw invalidParameter('Either SecretIdList or Filters must be provided, but not both.');
  }
  const values: unknown[] = [];
  const errors: unknown[] = [];
  if (ids !== undefined) {
    if (maxResults !== undefined || nextToken !== undefined) {
      throw invalidParameter('MaxResults and NextToken can only be used together with Filters.');
    }
    for (const id of ids) batchItem(ctx, id, values, errors);
    return { SecretValues: values, Errors: errors };
  }
  if (filterList === undefined) throw invalidParameter('Either SecretIdList or Filters must be provided.');
  const filters = readFilters(filterList);
  // Pages run in name order; the token is the last name of the page before.
  let after = '';
  if (nextToken !== undefined) {
    after = Buffer.from(nextToken, 'base64url').toString('utf8');
    if (after === '' || Buffer.from(after).toString('base64url') !== nextToken) {
      throw fail('InvalidNextTokenException', 'The NextToken value is not valid.');
    }
  }
  const found = [...ctx.state.secrets.values()]
    .filter((s) => s.deletionDate === undefined && s.name > after && matches(s, filters))
    .sort((a, b) => (a.name < b.name ? -1 : 1));
  const page = found.slice(0, maxResults ?? 20);
  for (const s of page) batchItem(ctx, s.name, values, errors);
  const out: Record<string, unknown> = { SecretValues: values, Errors: errors };
  if (found.length > page.length) out['NextToken'] = Buffer.from(page.at(-1)!.name).toString('base64url');
  return out;
};

const CreateSecret: Handler = (input, ctx) => {
  const name = input.string('Name', 512);
  const token = input.optString('ClientRequestToken', 64, 32);
  const description = input.optString('Description', 2048, 0);
  const value = readValue(input);
  const tags = readTags(input);
  if (!validSecretName(name)) {
    throw invalidParameter(
      'Invalid name. Must be a valid name containing alphanumeric characters, or any of the following: -/_+=.@!',
    );
  }
  const existing = ctx.state.secrets.get(name);
  if (existing) {
    if (existing.deletionDate !== undefined) {
      throw fail(
        'InvalidRequestException',
        "You can't create this secret because a secret with this name is already scheduled for deletion.",
      );
    }
    const same = token !== undefined ? existing.versions.find((v) => v.id === token) : undefined;
    if (same && value && sameValue(same, value))
      return { ARN: existing.arn, Name: existing.name, VersionId: same.id };
    throw fail('ResourceExistsException', `The operation failed because the secret ${name} already exists.`);
  }
  const s = ctx.state.addSecret(name, ctx.now, undefined, description);
  for (const [k, v] of tags) s.tags.set(k, v);
  const out: Record<string, unknown> = { ARN: s.arn, Name: s.name };
  if (value) {
    const v: SecretVersion = {
      id: token ?? randomUUID(),
      stages: ['AWSCURRENT'],
      created: ctx.now,
      ...value,
    };
    ctx.state.addSecretVersion(s, v);
    out['VersionId'] = v.id;
  }
  return out;
};

const PutSecretValue: Handler = (input, ctx) => {
  const id = input.string('SecretId');
  const token = input.optString('ClientRequestToken', 64, 32) ?? randomUUID();
  const stages = input.optStringList('VersionStages', 1, 20) ?? ['AWSCURRENT'];
  const value = readValue(input);
  if (!value) throw invalidParameter('You must provide either SecretString or SecretBinary.');
  const s = findLive(ctx, id);
  const existing = s.versions.find((v) => v.id === token);
  if (existing) {
    // Retrying with the same token is idempotent; reusing it for another value is not allowed.
    if (!sameValue(existing, value)) {
      throw fail(
        'ResourceExistsException',
        "You can't modify an existing version, you can only create a new version.",
      );
    }
    return { ARN: s.arn, Name: s.name, VersionId: existing.id, VersionStages: [...existing.stages] };
  }
  const v: SecretVersion = { id: token, stages: [...new Set(stages)], created: ctx.now, ...value };
  ctx.state.addSecretVersion(s, v);
  return { ARN: s.arn, Name: s.name, VersionId: v.id, VersionStages: [...v.stages] };
};

const UpdateSecretVersionStage: Handler = (input, ctx) => {
  const id = input.string('SecretId');
  const stage = input.string('VersionStage', 256);
  const moveTo = input.optString('MoveToVersionId', 64, 32);
  const removeFrom = input.optString('RemoveFromVersionId', 64, 32);
  const s = findLive(ctx, id);
  const versionById = (vid: string) => {
    const v = s.versions.find((x) => x.id === vid);
    if (!v) {
      throw fail(
        'ResourceNotFoundException',
        `Secrets Manager can't find the specified secret value for VersionId: ${vid}`,
      );
    }
    return v;
  };
  const holder = s.versions.find((x) => x.stages.includes(stage));
  if (moveTo !== undefined) {
    const target = versionById(moveTo);
    if (removeFrom !== undefined) versionById(removeFrom);
    if (holder && holder !== target && removeFrom !== holder.id) {
      throw invalidParameter(
        `The parameter RemoveFromVersionId can't be empty. Staging label ${stage} is currently attached to version ${holder.id}, so you must explicitly reference that version in RemoveFromVersionId.`,
      );
    }
    ctx.state.moveStage(s, stage, target);
  } else if (removeFrom !== undefined) {
    const v = versionById(removeFrom);
    if (stage === 'AWSCURRENT') {
      throw invalidParameter(
        "You can only move staging label AWSCURRENT to a different secret version. It can't be completely removed.",
      );
    }
    if (!v.stages.includes(stage)) {
      throw invalidParameter(`The staging label ${stage} is not attached to version ${removeFrom}.`);
    }
    v.stages = v.stages.filter((x) => x !== stage);
  } else {
    throw invalidParameter('You must specify MoveToVersionId or RemoveFromVersionId.');
  }
  s.changed = ctx.now;
  return { ARN: s.arn, Name: s.name };
};

const DeleteSecret: Handler = (input, ctx) => {
  const id = input.string('SecretId');
  const window = input.optInt('RecoveryWindowInDays', 7, 30);
  const force = input.optBool('ForceDeleteWithoutRecovery') ?? false;
  if (force && window !== undefined) {
    throw invalidParameter(
      "You can't use ForceDeleteWithoutRecovery in conjunction with RecoveryWindowInDays.",
    );
  }
  const s = find(ctx, id);
  if (force) {
    ctx.state.removeSecret(s);
    return { ARN: s.arn, DeletionDate: epoch(ctx.now), Name: s.name };
  }
  if (s.deletionDate === undefined) {
    s.deletedAt = ctx.now;
    s.deletionDate = ctx.now + (window ?? 30) * 86_400_000;
  }
  return { ARN: s.arn, DeletionDate: epoch(s.deletionDate), Name: s.name };
};

const RestoreSecret: Handler = (input, ctx) => {
  const s = find(ctx, input.string('SecretId'));
  delete s.deletionDate;
  delete s.deletedAt;
  return { ARN: s.arn, Name: s.name };
};

const DescribeSecret: Handler = (input, ctx) => {
  const id = input.string('SecretId');
  checkDenied(ctx, id, 'secretsmanager:DescribeSecret');
  return metadata(find(ctx, id), 'VersionIdsToStages');
};

const SORT_BY: Record<string, (s: Secret) => number | string> = {
  'created-date': (s) => s.created,
  'last-changed-date': (s) => s.changed,
  'last-accessed-date': (s) => s.lastAccessed ?? 0,
  name: (s) => s.name,
};

/** A secret's metadata as DescribeSecret answers it and ListSecrets lists it (its stages under `stagesKey`). */
function metadata(
  s: Secret,
  stagesKey: 'VersionIdsToStages' | 'SecretVersionsToStages',
): Record<string, unknown> {
  const out: Record<string, unknown> = { ARN: s.arn, Name: s.name };
  if (s.description !== undefined) out['Description'] = s.description;
  out['RotationEnabled'] = false;
  out['LastChangedDate'] = epoch(s.changed);
  // Secrets Manager reports the day of last access only.
  if (s.lastAccessed !== undefined)
    out['LastAccessedDate'] = epoch(s.lastAccessed - (s.lastAccessed % 86_400_000));
  if (s.deletionDate !== undefined) out['DeletedDate'] = epoch(s.deletionDate);
  out['Tags'] = [...s.tags].map(([Key, Value]) => ({ Key, Value }));
  const stages: Record<string, string[]> = {};
  for (const v of s.versions) if (v.stages.length) stages[v.id] = [...v.stages];
  out[stagesKey] = stages;
  out['CreatedDate'] = epoch(s.created);
  return out;
}

const ListSecrets: Handler = (input, ctx) => {
  const includeDeleted = input.optBool('IncludePlannedDeletion') ?? false;
  const maxResults = input.optInt('MaxResults', 1, 100) ?? 100;
  const nextToken = input.optString('NextToken', 4096);
  const order = input.optString('SortOrder', 4) ?? 'desc';
  const sortBy = input.optString('SortBy', 32) ?? 'created-date';
  if (order !== 'asc' && order !== 'desc') {
    throw new AwsError(
      'ValidationException',
      `1 validation error detected: Value '${order}' at 'sortOrder' failed to satisfy constraint: Member must satisfy enum value set: [asc, desc]`,
    );
  }
  const key = SORT_BY[sortBy];
  if (!key) {
    throw new AwsError(
      'ValidationException',
      `1 validation error detected: Value '${sortBy}' at 'sortBy' failed to satisfy constraint: Member must satisfy enum value set: [${Object.keys(SORT_BY).join(', ')}]`,
    );
  }
  const filters = readFilters(input.optObjectList('Filters') ?? []);
  // The token is the offset of the next page, for this same listing.
  let start = 0;
  if (nextToken !== undefined) {
    start = Number(Buffer.from(nextToken, 'base64url').toString('utf8'));
    if (
      !Number.isSafeInteger(start) ||
      start <= 0 ||
      Buffer.from(String(start)).toString('base64url') !== nextToken
    ) {
      throw fail('InvalidNextTokenException', 'The NextToken value is not valid.');
    }
  }
  const sign = order === 'asc' ? 1 : -1;
  const found = [...ctx.state.secrets.values()]
    .filter((s) => (includeDeleted || s.deletionDate === undefined) && matches(s, filters))
    .sort((a, b) => {
      const x = key(a);
      const y = key(b);
      if (x !== y) return (x < y ? -1 : 1) * sign;
      return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
    });
  const page = found.slice(start, start + maxResults);
  const out: Record<string, unknown> = { SecretList: page.map((x) => metadata(x, 'SecretVersionsToStages')) };
  if (start + maxResults < found.length)
    out['NextToken'] = Buffer.from(String(start + maxResults)).toString('base64url');
  return out;
};

export const SECRETS_OPERATIONS: Record<string, Handler> = {
  ListSecrets,
  GetSecretValue,
  BatchGetSecretValue,
  CreateSecret,
  PutSecretValue,
  UpdateSecretVersionStage,
  DeleteSecret,
  RestoreSecret,
  DescribeSecret,
};

/** Names a request is about, for fault-rule matching. */
export function secretsRequestNames(input: Input): string[] {
  return [
    ...input.peekStrings('SecretId'),
    ...input.peekStrings('SecretIdList'),
    ...input.peekStrings('Name'),
  ];
}
