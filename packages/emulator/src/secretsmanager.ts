// Secrets Manager operations (secretsmanager.*) over the in-memory state.
import { randomUUID } from 'node:crypto';
import { accessDenied, epoch, type Handler, type OpContext } from './context.ts';
import { AwsError, type Input } from './errors.ts';
import { type Secret, type SecretVersion, validSecretName } from './state.ts';

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

const BatchGetSecretValue: Handler = (input, ctx) => {
  const ids = input.optStringList('SecretIdList', 1, 20);
  const filters = input.optObjectList('Filters');
  const maxResults = input.optInt('MaxResults', 1, 20);
  input.optString('NextToken', 4096);
  if (ids !== undefined && filters !== undefined) {
    throw invalidParameter('Either SecretIdList or Filters must be provided, but not both.');
  }
  if (filters !== undefined)
    throw invalidParameter('Filters are not supported by the pscache emulator; use SecretIdList.');
  if (ids === undefined) throw invalidParameter('Either SecretIdList or Filters must be provided.');
  if (maxResults !== undefined) throw invalidParameter('MaxResults can only be used together with Filters.');
  const values: Record<string, unknown>[] = [];
  const errors: Record<string, unknown>[] = [];
  for (const id of ids) {
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
  return { SecretValues: values, Errors: errors };
};

const CreateSecret: Handler = (input, ctx) => {
  const name = input.string('Name', 512);
  const token = input.optString('ClientRequestToken', 64, 32);
  const description = input.optString('Description', 2048, 0);
  const value = readValue(input);
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
  const s = find(ctx, id);
  const out: Record<string, unknown> = { ARN: s.arn, Name: s.name };
  if (s.description !== undefined) out['Description'] = s.description;
  out['RotationEnabled'] = false;
  out['LastChangedDate'] = epoch(s.changed);
  // Secrets Manager reports the day of last access only.
  if (s.lastAccessed !== undefined)
    out['LastAccessedDate'] = epoch(s.lastAccessed - (s.lastAccessed % 86_400_000));
  if (s.deletionDate !== undefined) out['DeletedDate'] = epoch(s.deletionDate);
  out['Tags'] = [];
  const stages: Record<string, string[]> = {};
  for (const v of s.versions) if (v.stages.length) stages[v.id] = [...v.stages];
  out['VersionIdsToStages'] = stages;
  out['CreatedDate'] = epoch(s.created);
  return out;
};

export const SECRETS_OPERATIONS: Record<string, Handler> = {
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
