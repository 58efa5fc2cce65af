// SSM Parameter Store operations (AmazonSSM.*) over the in-memory state.
import { accessDenied, epoch, type Handler, type OpContext, principalArn } from './context.ts';
import { AwsError, type Input, validation } from './errors.ts';
import {
  PARAMETER_TYPES,
  type Param,
  type ParamVersion,
  parameterDepth,
  parameterNameProblem,
  type Secret,
  type SecretVersion,
  validLabel,
} from './state.ts';
import type { ParameterType } from './types.ts';

const REFERENCE_PREFIX = '/aws/reference/secretsmanager/';

const notFound = (message?: string) => new AwsError('ParameterNotFound', message);
const versionNotFound = (name: string, version: number | string) =>
  new AwsError(
    'ParameterVersionNotFound',
    `Systems Manager could not find version ${version} of ${name}. Verify the version and try again.`,
  );

interface ParsedName {
  /** The parameter name, without selector or ARN prefix. */
  name: string;
  /** ":3" or ":label" as given, when a selector was used. */
  selector?: string;
  version?: number;
  label?: string;
}

const ARN = /^arn:aws[a-z-]*:ssm:([^:]*):([^:]*):parameter(\/[^:]*)(?::(.*))?$/;

/** Splits `name`, `name:3`, `name:label` or a parameter ARN (with optional selector). */
function parseName(ctx: OpContext, raw: string): ParsedName {
  if (/\s/.test(raw)) throw validation(`Parameter name: can't contain spaces: ${raw}`);
  let name: string;
  let sel: string | undefined;
  const arn = ARN.exec(raw);
  if (arn) {
    const [, region, account, rest, selector] = arn;
    if (region !== ctx.state.region || account !== ctx.state.accountId) return { name: raw };
    // The ARN of `x` and of `/x` are both `parameter/x`; prefer whichever exists.
    const bare = rest!.slice(1);
    name = !bare.includes('/') && ctx.state.params.has(bare) && !ctx.state.params.has(rest!) ? bare : rest!;
    sel = selector;
  } else {
    const i = raw.indexOf(':');
    name = i < 0 ? raw : raw.slice(0, i);
    sel = i < 0 ? undefined : raw.slice(i + 1);
  }
  if (sel === undefined) return { name };
  if (sel === '') throw validation(`Invalid parameter name or selector: ${raw}`);
  if (/^\d+$/.test(sel)) return { name, selector: `:${sel}`, version: Number(sel) };
  return { name, selector: `:${sel}`, label: sel };
}

function parameterOut(
  ctx: OpContext,
  p: Param,
  v: ParamVersion,
  withDecryption: boolean,
  selector: string | undefined,
): Record<string, unknown> {
  const out: Record<string, unknown> = {
    Name: p.name,
    Type: v.type,
    Value:
      v.type === 'SecureString' && !withDecryption
        ? ctx.kms.encrypt(v.value, `${p.name}:${v.version}`)
        : v.value,
    Version: v.version,
  };
  if (selector !== undefined) out['Selector'] = selector;
  out['LastModifiedDate'] = epoch(v.modified);
  out['ARN'] = p.arn;
  out['DataType'] = 'text';
  return out;
}

interface Reference {
  refName: string;
  secretId: string;
  stage?: string;
  selector?: string;
}

function parseReference(raw: string): Reference {
  const rest = raw.slice(REFERENCE_PREFIX.length);
  if (!rest.startsWith('arn:')) {
    const i = rest.indexOf(':');
    if (i >= 0) {
      const stage = rest.slice(i + 1);
      return {
        refName: raw.slice(0, REFERENCE_PREFIX.length + i),
        secretId: rest.slice(0, i),
        stage,
        selector: `:${stage}`,
      };
    }
  }
  return { refName: raw, secretId: rest };
}

/** Every name a read of `raw` could be denied under: as given, plain name, ARN, and the secret behind a reference. */
function denyCandidates(ctx: OpContext, raw: string): string[] {
  if (raw.startsWith(REFERENCE_PREFIX)) {
    const ref = parseReference(raw);
    const s = ctx.state.findSecret(ref.secretId);
    return [raw, ref.refName, ref.secretId, ...(s ? [s.name, s.arn] : [])];
  }
  let parsed: ParsedName;
  try {
    parsed = parseName(ctx, raw);
  } catch {
    return [raw];
  }
  if (parsed.name.startsWith(REFERENCE_PREFIX)) return [raw, ...denyCandidates(ctx, parsed.name)];
  return [raw, parsed.name, ctx.state.parameterArn(parsed.name)];
}

function checkDenied(ctx: OpContext, raw: string, action: string): void {
  if (ctx.deny.empty) return;
  if (ctx.deny.denies(denyCandidates(ctx, raw))) {
    const name = raw.startsWith(REFERENCE_PREFIX) ? parseReference(raw).refName : raw;
    let arnName = name;
    try {
      if (!raw.startsWith(REFERENCE_PREFIX)) arnName = parseName(ctx, raw).name;
    } catch {}
    throw accessDenied(ctx, action, ctx.state.parameterArn(arnName), 'message');
  }
}

/** GetParameter's view of a Secrets Manager secret: `/aws/reference/secretsmanager/ID[:STAGE]`. */
function readReference(ctx: OpContext, raw: string, withDecryption: boolean): Record<string, unknown> {
  if (!withDecryption)
    throw validation('WithDecryption flag must be True for retrieving a Secret Manager secret.');
  const ref = parseReference(raw);
  const s: Secret | undefined = ctx.state.findSecret(ref.secretId);
  if (!s || s.deletionDate !== undefined) throw notFound(`Secret ${ref.refName} not found.`);
  const stage = ref.stage ?? 'AWSCURRENT';
  const v: SecretVersion | undefined = s.versions.find((x) => x.stages.includes(stage));
  if (!v) throw notFound(`Secret ${ref.refName} not found.`);
  const value = v.secretString ?? v.secretBinary?.toString('base64') ?? '';
  const source: Record<string, unknown> = {
    ARN: s.arn,
    CreatedDate: new Date(v.created).toISOString(),
    Name: s.name,
  };
  if (v.secretString !== undefined) source['SecretString'] = v.secretString;
  else source['SecretBinary'] = value;
  source['VersionId'] = v.id;
  source['VersionStages'] = [...v.stages];
  const out: Record<string, unknown> = {
    Name: ref.refName,
    Type: 'SecureString',
    Value: value,
    Version: 0,
  };
  if (ref.selector !== undefined) out['Selector'] = ref.selector;
  out['SourceResult'] = JSON.stringify(source);
  out['LastModifiedDate'] = epoch(v.created);
  out['ARN'] = s.arn;
  out['DataType'] = 'text';
  s.lastAccessed = ctx.now;
  return out;
}

/** One parameter as GetParameter returns it; throws ParameterNotFound / ParameterVersionNotFound. */
function readOne(ctx: OpContext, raw: string, withDecryption: boolean): Record<string, unknown> {
  if (raw.startsWith(REFERENCE_PREFIX)) return readReference(ctx, raw, withDecryption);
  const parsed = parseName(ctx, raw);
  // A reference named by its ARN (as a client reading it from another Region sends it).
  if (parsed.name.startsWith(REFERENCE_PREFIX))
    return readReference(ctx, parsed.name + (parsed.selector ?? ''), withDecryption);
  const p = ctx.state.params.get(parsed.name);
  if (!p) throw notFound();
  let v: ParamVersion | undefined;
  if (parsed.version !== undefined) {
    v = p.versions.find((x) => x.version === parsed.version);
    if (!v) throw versionNotFound(p.name, parsed.version);
  } else if (parsed.label !== undefined) {
    const label = parsed.label;
    v = p.versions.find((x) => x.labels.includes(label));
    if (!v) throw notFound();
  } else {
    v = p.versions.at(-1)!;
  }
  return parameterOut(ctx, p, v, withDecryption, parsed.selector);
}

const GetParameter: Handler = (input, ctx) => {
  const raw = input.string('Name').trim();
  const withDecryption = input.optBool('WithDecryption') ?? false;
  checkDenied(ctx, raw, 'ssm:GetParameter');
  return { Parameter: readOne(ctx, raw, withDecryption) };
};

const GetParameters: Handler = (input, ctx) => {
  const names = [...new Set(input.stringList('Names', 1, 10).map((n) => n.trim()))];
  const withDecryption = input.optBool('WithDecryption') ?? false;
  // IAM evaluates the whole request: one denied name fails the call.
  for (const raw of names) checkDenied(ctx, raw, 'ssm:GetParameters');
  const parameters: Record<string, unknown>[] = [];
  const invalid: string[] = [];
  for (const raw of names) {
    try {
      parameters.push(readOne(ctx, raw, withDecryption));
    } catch (err) {
      if (
        err instanceof AwsError &&
        (err.type === 'ParameterNotFound' || err.type === 'ParameterVersionNotFound')
      ) {
        invalid.push(raw);
      } else {
        throw err;
      }
    }
  }
  parameters.sort((a, b) => {
    const x = String(a['Name']);
    const y = String(b['Name']);
    return x < y ? -1 : x > y ? 1 : 0;
  });
  return { InvalidParameters: invalid, Parameters: parameters };
};

interface PathToken {
  p: string;
  r: boolean;
  a: string;
}

function decodeToken(token: string): PathToken | undefined {
  try {
    const t = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as Partial<PathToken>;
    if (typeof t.p === 'string' && typeof t.r === 'boolean' && typeof t.a === 'string') return t as PathToken;
  } catch {}
  return undefined;
}

type Filter = (p: Param) => ParamVersion | undefined;

function parseFilters(input: Input): Filter[] {
  const filters: Filter[] = [];
  for (const f of input.optObjectList('ParameterFilters') ?? []) {
    const key = f.string('Key', 132);
    const option = f.optString('Option', 10) ?? 'Equals';
    const values = f.optStringList('Values', 1, 50) ?? [];
    if (key === 'Type' || key === 'Label' || key === 'KeyId') {
      if (option !== 'Equals') {
        throw new AwsError('InvalidFilterOption', `The filter option ${option} is not valid for key ${key}.`);
      }
    } else {
      throw new AwsError('InvalidFilterKey', `The filter key ${key} is not valid for GetParametersByPath.`);
    }
    if (key === 'Type') {
      for (const v of values) {
        if (!PARAMETER_TYPES.includes(v as ParameterType)) {
          throw new AwsError('InvalidFilterValue', `The filter value ${v} is not valid for key Type.`);
        }
      }
      filters.push((p) => {
        const v = p.versions.at(-1)!;
        return values.includes(v.type) ? v : undefined;
      });
    } else if (key === 'Label') {
      // A label filter answers the labelled version, not the latest.
      filters.push((p) => p.versions.find((v) => v.labels.some((l) => values.includes(l))));
    } else {
      filters.push((p) => {
        const v = p.versions.at(-1)!;
        return v.type === 'SecureString' && (values.includes('alias/aws/ssm') || values.length === 0)
          ? v
          : undefined;
      });
    }
  }
  return filters;
}

const GetParametersByPath: Handler = (input, ctx) => {
  const path = input.string('Path');
  const recursive = input.optBool('Recursive') ?? false;
  const withDecryption = input.optBool('WithDecryption') ?? false;
  const maxResults = input.optInt('MaxResults', 1, 10) ?? 10;
  const nextToken = input.optString('NextToken', 1024);
  const filters = parseFilters(input);
  if (!path.startsWith('/')) {
    throw validation(
      'The parameter doesn\'t meet the parameter name requirements. The parameter name must begin with a forward slash "/".',
    );
  }
  if (parameterDepth(path) > 15) {
    throw validation('The parameter path exceeds the maximum of 15 hierarchy levels.');
  }
  const prefix = path.endsWith('/') ? path : `${path}/`;
  if (!ctx.deny.empty && ctx.deny.denies([path, prefix, prefix.slice(0, -1) || '/'])) {
    throw accessDenied(
      ctx,
      'ssm:GetParametersByPath',
      ctx.state.parameterArn(prefix.slice(0, -1) || '/'),
      'message',
    );
  }
  let after = '';
  if (nextToken !== undefined) {
    const t = decodeToken(nextToken);
    if (!t || t.p !== prefix || t.r !== recursive)
      throw new AwsError('InvalidNextToken', 'The nextToken is not valid.');
    after = t.a;
  }
  const names = ctx.state.names();
  // Names are sorted: start at the first one not below the prefix (or the token's last name).
  const key = after > prefix ? after : prefix;
  let lo = 0;
  let hi = names.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (names[mid]! < key) lo = mid + 1;
    else hi = mid;
  }
  const out: Record<string, unknown>[] = [];
  let last = '';
  let more = false;
  for (let i = lo; i < names.length; i++) {
    const name = names[i]!;
    if (!name.startsWith(prefix)) break;
    if (after !== '' && name <= after) continue;
    if (!recursive && name.indexOf('/', prefix.length) >= 0) continue;
    const p = ctx.state.params.get(name)!;
    let v: ParamVersion | undefined = p.versions.at(-1)!;
    for (const f of filters) {
      v = f(p);
      if (!v) break;
    }
    if (!v) continue;
    if (out.length === maxResults) {
      more = true;
      break;
    }
    out.push(parameterOut(ctx, p, v, withDecryption, undefined));
    last = name;
  }
  const res: Record<string, unknown> = { Parameters: out };
  if (more) {
    res['NextToken'] = Buffer.from(
      JSON.stringify({ p: prefix, r: recursive, a: last } satisfies PathToken),
    ).toString('base64url');
  }
  return res;
};

const TIERS = ['Standard', 'Advanced', 'Intelligent-Tiering'];

const PutParameter: Handler = (input, ctx) => {
  const name = input.string('Name');
  const value = input.string('Value', 8192);
  const type = input.optString('Type', 20);
  const overwrite = input.optBool('Overwrite') ?? false;
  const description = input.optString('Description', 1024, 0);
  const tier = input.optString('Tier', 20) ?? 'Standard';
  const dataType = input.optString('DataType', 128);
  const problem = parameterNameProblem(name);
  if (problem) throw validation(`Parameter name: ${problem}`);
  if (parameterDepth(name) > 15) {
    throw new AwsError(
      'HierarchyLevelLimitExceededException',
      'Parameter name: hierarchy levels exceed the maximum of 15.',
    );
  }
  if (type !== undefined && !PARAMETER_TYPES.includes(type as ParameterType)) {
    throw validation(
      `1 validation error detected: Value '${type}' at 'type' failed to satisfy constraint: Member must satisfy enum value set: [SecureString, StringList, String]`,
    );
  }
  if (!TIERS.includes(tier)) {
    throw validation(
      `1 validation error detected: Value '${tier}' at 'tier' failed to satisfy constraint: Member must satisfy enum value set: [Advanced, Intelligent-Tiering, Standard]`,
    );
  }
  if (dataType !== undefined && dataType !== 'text') {
    throw validation(`The following data type is not supported: ${dataType} (supported: text)`);
  }
  if (tier !== 'Advanced' && value.length > 4096) {
    throw validation(
      'Standard tier parameters support a maximum parameter value of 4096 characters. To create a larger parameter value, upgrade the parameter to use the advanced-parameter tier. For more information, see https://docs.aws.amazon.com/systems-manager/latest/userguide/parameter-store-advanced-parameters.html',
    );
  }
  const existing = ctx.state.params.get(name);
  if (existing && !overwrite) {
    throw new AwsError(
      'ParameterAlreadyExists',
      'The parameter already exists. To overwrite this value, set the overwrite option in the request to true.',
    );
  }
  if (!existing && type === undefined)
    throw validation('A parameter type is required when you create a parameter.');
  const t = (type as ParameterType | undefined) ?? existing!.versions.at(-1)!.type;
  const v = ctx.state.putParameter(name, value, t, ctx.now, description);
  return { Tier: tier === 'Advanced' ? 'Advanced' : 'Standard', Version: v.version };
};

const LabelParameterVersion: Handler = (input, ctx) => {
  const name = input.string('Name');
  const version = input.optInt('ParameterVersion', 1, Number.MAX_SAFE_INTEGER);
  const labels = input.stringList('Labels', 1, 10);
  const p = ctx.state.params.get(parseName(ctx, name).name);
  if (!p) throw notFound();
  const v = version === undefined ? p.versions.at(-1)! : p.versions.find((x) => x.version === version);
  if (!v) throw versionNotFound(p.name, version!);
  const valid = [...new Set(labels.filter(validLabel))];
  const invalid = labels.filter((l) => !validLabel(l));
  if (new Set([...v.labels, ...valid]).size > 10) {
    throw new AwsError(
      'ParameterVersionLabelLimitExceeded',
      'A parameter version can have maximum 10 labels.Move one or more labels to another version and try again.',
    );
  }
  // A label names one version at a time: attaching it here moves it off any other.
  for (const label of valid) {
    for (const other of p.versions) if (other !== v) other.labels = other.labels.filter((l) => l !== label);
    if (!v.labels.includes(label)) v.labels.push(label);
  }
  return { InvalidLabels: invalid, ParameterVersion: v.version };
};

const DeleteParameter: Handler = (input, ctx) => {
  const name = input.string('Name');
  if (!ctx.state.deleteParameter(name)) throw notFound();
  return {};
};

const GetParameterHistory: Handler = (input, ctx) => {
  const raw = input.string('Name');
  const withDecryption = input.optBool('WithDecryption') ?? false;
  const maxResults = input.optInt('MaxResults', 1, 50) ?? 50;
  const nextToken = input.optString('NextToken', 1024);
  checkDenied(ctx, raw, 'ssm:GetParameterHistory');
  const p = ctx.state.params.get(parseName(ctx, raw).name);
  if (!p) throw notFound();
  let start = 0;
  if (nextToken !== undefined) {
    start = Number(Buffer.from(nextToken, 'base64url').toString('utf8'));
    if (!Number.isInteger(start) || start < 0 || start > p.versions.length) {
      throw new AwsError('InvalidNextToken', 'The nextToken is not valid.');
    }
  }
  const page = p.versions.slice(start, start + maxResults).map((v) => {
    const out: Record<string, unknown> = { Name: p.name, Type: v.type };
    if (v.type === 'SecureString') out['KeyId'] = 'alias/aws/ssm';
    out['LastModifiedDate'] = epoch(v.modified);
    out['LastModifiedUser'] = principalArn(ctx.state.accountId);
    if (v.description !== undefined) out['Description'] = v.description;
    out['Value'] =
      v.type === 'SecureString' && !withDecryption
        ? ctx.kms.encrypt(v.value, `${p.name}:${v.version}`)
        : v.value;
    out['Version'] = v.version;
    out['Labels'] = [...v.labels];
    out['Tier'] = 'Standard';
    out['Policies'] = [];
    out['DataType'] = 'text';
    return out;
  });
  const res: Record<string, unknown> = { Parameters: page };
  if (start + maxResults < p.versions.length) {
    res['NextToken'] = Buffer.from(String(start + maxResults)).toString('base64url');
  }
  return res;
};

/** One DescribeParameters filter (ParameterFilters, or the deprecated Filters): a test on a parameter. */
type MetadataFilter = (p: Param, v: ParamVersion) => boolean;

const DESCRIBE_KEYS = /^(tag:.+|Name|Type|KeyId|Path|Tier|DataType)$/;

function describeFilters(input: Input): MetadataFilter[] {
  const out: MetadataFilter[] = [];
  const legacy = input.optObjectList('Filters');
  const current = input.optObjectList('ParameterFilters');
  if (legacy && current) {
    throw validation('You can use either Filters or ParameterFilters in a single request, but not both.');
  }
  for (const f of legacy ?? []) {
    const key = f.string('Key', 132);
    if (key !== 'Name' && key !== 'Type' && key !== 'KeyId') {
      throw validation(
        `1 validation error detected: Value '${key}' at 'filters.1.member.key' failed to satisfy constraint: Member must satisfy enum value set: [Name, Type, KeyId]`,
      );
    }
    const values = f.stringList('Values', 1, 50);
    out.push(describeTest(key, key === 'Name' ? 'BeginsWith' : 'Equals', values));
  }
  for (const f of current ?? []) {
    const key = f.string('Key', 132);
    if (!DESCRIBE_KEYS.test(key)) {
      throw new AwsError('InvalidFilterKey', `The filter key ${key} is not valid for DescribeParameters.`);
    }
    const path = key === 'Path';
    const option = f.optString('Option', 10) ?? (path ? 'OneLevel' : 'Equals');
    const allowed = path
      ? ['Recursive', 'OneLevel']
      : key === 'Name'
        ? ['Equals', 'BeginsWith', 'Contains']
        : ['Equals', 'BeginsWith'];
    if (!allowed.includes(option)) {
      throw new AwsError('InvalidFilterOption', `The filter option ${option} is not valid for key ${key}.`);
    }
    const values = f.optStringList('Values', 1, 50) ?? [];
    if (values.length === 0 && !key.startsWith('tag:')) {
      throw new AwsError('InvalidFilterValue', `The filter ${key} needs at least one value.`);
    }
    out.push(describeTest(key, option, values));
  }
  return out;
}

/** The attribute a filter key looks at, and how its values match (values ORed). */
function describeTest(key: string, option: string, values: string[]): MetadataFilter {
  const match = (have: string | undefined) =>
    have !== undefined &&
    values.some((v) =>
      option === 'BeginsWith' ? have.startsWith(v) : option === 'Contains' ? have.includes(v) : have === v,
    );
  switch (key) {
    case 'Name':
      // Names are matched with or without their leading slash, as SSM does.
      return (p) => match(p.name) || match(p.name.replace(/^\//, ''));
    case 'Type':
      return (_p, v) => match(v.type);
    case 'KeyId':
      return (_p, v) => v.type === 'SecureString' && match('alias/aws/ssm');
    case 'Tier':
      return () => match('Standard');
    case 'DataType':
      return () => match('text');
    case 'Path':
      return (p) =>
        values.some((raw) => {
          const prefix = raw.endsWith('/') ? raw : `${raw}/`;
          if (!p.name.startsWith(prefix)) return false;
          return option === 'Recursive' || p.name.indexOf('/', prefix.length) === -1;
        });
    default:
      // tag:KEY: parameters carry no tags in the emulator, so none matches.
      return () => false;
  }
}

const DescribeParameters: Handler = (input, ctx) => {
  const maxResults = input.optInt('MaxResults', 1, 50) ?? 50;
  const nextToken = input.optString('NextToken', 1024);
  const filters = describeFilters(input);
  let after = '';
  if (nextToken !== undefined) {
    after = Buffer.from(nextToken, 'base64url').toString('utf8');
    if (after === '' || Buffer.from(after).toString('base64url') !== nextToken) {
      throw new AwsError('InvalidNextToken', 'The nextToken is not valid.');
    }
  }
  const page: Record<string, unknown>[] = [];
  let more = false;
  // In name order; the token is the last name of the page before.
  for (const name of ctx.state.names()) {
    if (name <= after) continue;
    const p = ctx.state.params.get(name)!;
    const v = p.versions.at(-1)!;
    if (!filters.every((f) => f(p, v))) continue;
    if (page.length === maxResults) {
      more = true;
      break;
    }
    const out: Record<string, unknown> = { Name: p.name, ARN: p.arn, Type: v.type };
    if (v.type === 'SecureString') out['KeyId'] = 'alias/aws/ssm';
    out['LastModifiedDate'] = epoch(v.modified);
    out['LastModifiedUser'] = principalArn(ctx.state.accountId);
    if (v.description !== undefined) out['Description'] = v.description;
    out['Version'] = v.version;
    out['Tier'] = 'Standard';
    out['Policies'] = [];
    out['DataType'] = 'text';
    page.push(out);
  }
  const res: Record<string, unknown> = { Parameters: page };
  if (more) res['NextToken'] = Buffer.from(String(page.at(-1)!['Name'])).toString('base64url');
  return res;
};

export const SSM_OPERATIONS: Record<string, Handler> = {
  GetParameter,
  GetParameters,
  GetParametersByPath,
  DescribeParameters,
  PutParameter,
  LabelParameterVersion,
  DeleteParameter,
  GetParameterHistory,
};

/** Names a request is about, for fault-rule matching. */
export function ssmRequestNames(input: Input): string[] {
  return [...input.peekStrings('Name'), ...input.peekStrings('Names'), ...input.peekStrings('Path')];
}
