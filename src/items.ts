// What a read asks for (an item, or a path listing), the cache key each maps to, the Region an ARN names,
// and the one function that tells which asked-for ids a batch answer item stands for.
import { inPartition, type PartitionRule, REGION } from './aws/endpoints.ts';
import type { WireParameter, WireSecretValue } from './aws/types.ts';
import { parameterBody, secretBody } from './shapes.ts';

export interface ParameterRequest {
  service: 'ssm';
  /** A name, an ARN, or (batch route only) `name:version` / `name:label` as given. */
  name: string;
  /** At most one selector: the first of version/label in the query string (as the original). */
  version?: string;
  label?: string;
  withDecryption: boolean;
  /** Read with credentials from AssumeRole on this role; absent: the base credentials. */
  roleArn?: string;
}

export interface SecretRequest {
  service: 'secretsmanager';
  secretId: string;
  versionId?: string;
  versionStage?: string;
  /** Read with credentials from AssumeRole on this role; absent: the base credentials. */
  roleArn?: string;
}

export type ItemRequest = ParameterRequest | SecretRequest;

/** GET /systemsmanager/parameters/path: every parameter under `path`. */
export interface PathRequest {
  path: string;
  recursive: boolean;
  withDecryption: boolean;
  roleArn?: string;
}

// NUL cannot appear in a name (the server rejects control characters), so it separates key parts.
const SEP = '\u0000';

const selectorPart = (r: ParameterRequest) =>
  r.version !== undefined ? `v${r.version}` : r.label !== undefined ? `l${r.label}` : '';

/**
 * Who the read is made as, first in every key: what one role (or the base credentials, the empty part)
 * fetched never answers a read made as another. A role ARN holds no NUL.
 */
const rolePart = (r: { roleArn?: string }) => `${r.roleArn ?? ''}${SEP}`;

/**
 * Keys of frozen requests (the server keeps the requests it parsed, frozen, and reads them again) are
 * built once: a string whose hash is known, so the cache's lookup does not hash it again. (No closure
 * is passed around to build one: a hit must allocate nothing, also where V8 does not inline.)
 */
function remember(keys: WeakMap<ItemRequest, string>, r: ItemRequest, key: string): string {
  if (Object.isFrozen(r)) keys.set(r, key);
  return key;
}

const itemKeys = new WeakMap<ItemRequest, string>();
const plainKeys = new WeakMap<ItemRequest, string>();

/** role + service + name/secretId + selector + decryption flag: each combination answers differently. */
export function cacheKey(r: ItemRequest): string {
  const known = itemKeys.get(r);
  if (known !== undefined) return known;
  return remember(
    itemKeys,
    r,
    r.service === 'ssm'
      ? `${rolePart(r)}ssm${SEP}${r.name}${SEP}${selectorPart(r)}${SEP}${r.withDecryption ? 1 : 0}`
      : `${rolePart(r)}sm${SEP}${r.secretId}${SEP}${r.versionId ?? ''}${SEP}${r.versionStage ?? ''}`,
  );
}

/**
 * The key of an SSM answer that reads the same with and without decryption (anything but a SecureString):
 * one entry then serves both kinds of request (of one role).
 */
export function plainKey(r: ItemRequest): string | undefined {
  if (r.service !== 'ssm') return undefined;
  const known = plainKeys.get(r);
  if (known !== undefined) return known;
  return remember(plainKeys, r, `${rolePart(r)}ssm${SEP}${r.name}${SEP}${selectorPart(r)}${SEP}*`);
}

/**
 * The key of an id an object is known by (a name, an ARN, a secret's partial ARN), for one role and
 * service, whatever the selector and decryption flag: reads made through different ids of one object
 * are tied together through it (a NotFound through one drops what the others hold).
 */
export function idKey(r: { service: ItemRequest['service']; roleArn?: string }, id: string): string {
  // Stryker disable next-line EqualityOperator,StringLiteral: equivalent: id keys are kept apart from storage keys (byId, Entry.ids): the service part need only tell the two apart, as a swap or either emptied still does
  return `${rolePart(r)}${r.service === 'ssm' ? 'ssm' : 'sm'}id${SEP}${id}`;
}

/**
 * Every id the object a request names may be known by, as far as the id itself tells: the id, and for an
 * SSM parameter ARN the name it ends in (with and without the leading `/`, which its ARN does not keep
 * apart). A secret ARN tells nothing more: whether it ends in a random suffix or in a name that looks
 * like one (`app-secret`) only the answer says. Answers tell the rest (Loaded.ids).
 */
export function idsOf(r: ItemRequest): string[] {
  const id = r.service === 'ssm' ? r.name : r.secretId;
  if (r.service !== 'ssm' || !id.startsWith('arn:')) return [id];
  const at = id.indexOf(':parameter/');
  if (at === -1) return [id];
  const rest = id.slice(at + ':parameter/'.length).split(':')[0]!;
  return [id, `/${rest}`, rest];
}

/** The selector a request names ('' for none): version or label, versionId or versionStage. */
export function selectorOf(r: ItemRequest): string {
  if (r.service === 'ssm') return selectorPart(r);
  return r.versionId === undefined && r.versionStage === undefined
    ? ''
    : `${r.versionId ?? ''}${SEP}${r.versionStage ?? ''}`;
}

/** A path listing's own key: its items are also stored under their single-item keys. */
export function pathKey(p: PathRequest): string {
  return `${rolePart(p)}ssmpath${SEP}${p.path}${SEP}${p.recursive ? 1 : 0}${SEP}${p.withDecryption ? 1 : 0}`;
}

const ARN_REGION: Record<ItemRequest['service'], RegExp> = {
  ssm: /^arn:aws[a-z-]*:ssm:([^:]*):\d{12}:parameter\//,
  secretsmanager: /^arn:aws[a-z-]*:secretsmanager:([^:]*):\d{12}:secret:/,
};

/**
 * The Region a request's ARN names (a parameter ARN, including one of an `/aws/reference/secretsmanager/`
 * path, or a secret ARN); undefined for a plain name, or an ARN of another service or without a Region.
 */
export function arnRegion(r: ItemRequest): string | undefined {
  const id = r.service === 'ssm' ? r.name : r.secretId;
  // Stryker disable next-line ConditionalExpression,StringLiteral: equivalent: a fast path; both ARN_REGION patterns begin with ^arn:, so the slow path gives undefined too
  if (!id.startsWith('arn:')) return undefined;
  const region = ARN_REGION[r.service].exec(id)?.[1];
  // Stryker disable next-line ConditionalExpression: equivalent: with `region !== undefined` made true, REGION.test(undefined) tests "undefined", which is no Region name
  return region !== undefined && REGION.test(region) ? region : undefined;
}

const shown = (s: string) => JSON.stringify(s.length > 64 ? `${s.slice(0, 64)}...` : s);

/**
 * Why an id (a name, a secret id, a role ARN) cannot be read, or undefined: an ARN of another partition
 * than the configured Region's, or (for an ARN of `service`, whose Region pscache follows) naming a Region
 * that is not one of that partition's. Such reads would carry the credentials' key id and session token to
 * another partition's endpoints, or to made-up hosts; they are refused before any upstream call.
 */
export function outsidePartition(
  id: string,
  service: ItemRequest['service'] | undefined,
  p: PartitionRule,
): string | undefined {
  if (!id.startsWith('arn:')) return undefined;
  // id begins with `arn:`: the split has a partition (maybe '').
  const [, partition, arnService, region = ''] = id.split(':', 4);
  if (partition !== p.name) {
    return `is an ARN of partition ${shown(partition!)}; pscache reads only from partition ${p.name}, its Region ${p.region}'s`;
  }
  if (service === undefined || arnService !== service || inPartition(region, p)) return undefined;
  return `names Region ${shown(region)}, which is not a Region of partition ${p.name} (pscache's Region is ${p.region})`;
}

/** The name a request is about, for DEBUG logs. */
export function itemName(r: ItemRequest): string {
  return r.service === 'ssm' ? r.name : r.secretId;
}

/** A loaded item: the rendered drop-in body. */
export interface Loaded {
  body: Buffer;
  /** The answer does not depend on withDecryption (a String or StringList parameter): store it under plainKey. */
  plain?: boolean;
  /** Every id the answer names its object by (Name, ARN, a secret's partial ARN). */
  ids?: readonly string[];
}

export function loadedParameter(p: WireParameter): Loaded {
  const body = Buffer.from(parameterBody(p));
  const ids = p.ARN !== undefined ? [p.Name, p.ARN] : [p.Name];
  return p.Type === 'SecureString' ? { body, ids } : { body, plain: true, ids };
}

export function loadedSecret(s: WireSecretValue): Loaded {
  const ids: string[] = [];
  if (s.Name !== undefined) ids.push(s.Name);
  if (s.ARN !== undefined) {
    ids.push(s.ARN);
    // A partial ARN (the full one without `-` and its 6 random characters) names it too.
    if (s.ARN[s.ARN.length - SECRET_SUFFIX] === '-') ids.push(s.ARN.slice(0, -SECRET_SUFFIX));
  }
  return { body: Buffer.from(secretBody(s)), ids };
}

/** True when a single read may share a batch call: no selector, and a plain name (no `:`, so no ARN). */
export function batchable(r: ItemRequest): boolean {
  if (r.service === 'ssm') {
    return r.version === undefined && r.label === undefined && !r.name.includes(':');
  }
  return r.versionId === undefined && r.versionStage === undefined;
}

/** `arn:PARTITION:secretsmanager:REGION:ACCOUNT:secret:NAME-AbCdEf`: the random suffix is `-` and 6 characters. */
const SECRET_SUFFIX = 7;

/**
 * Whether a batch answer's item is the one asked for as `id`: the id as given (a name, or for SSM also
 * `name:version`/`name:label`), the item's full ARN, or for secrets a partial ARN (the ARN without its
 * random suffix). Used by the loader's batch calls; an id that matches nothing is
 * then asked for with a single call, never guessed.
 */
export function answers(service: 'ssm', item: WireParameter, id: string): boolean;
export function answers(service: 'secretsmanager', item: WireSecretValue, id: string): boolean;
export function answers(service: ItemRequest['service'], item: WireParameter | WireSecretValue, id: string) {
  if (service === 'ssm') {
    const p = item as WireParameter;
    const selector = p.Selector ?? '';
    return id === `${p.Name}${selector}` || (p.ARN !== undefined && id === `${p.ARN}${selector}`);
  }
  const s = item as WireSecretValue;
  if (id === s.Name || id === s.ARN) return true;
  return (
    s.ARN !== undefined &&
    id.startsWith('arn:') &&
    s.ARN.length === id.length + SECRET_SUFFIX &&
    s.ARN.startsWith(id) &&
    s.ARN[id.length] === '-'
  );
}

/** The id a request stands for in a batch call (GetParameters Names, BatchGetSecretValue SecretIdList). */
export function batchId(r: ItemRequest): string {
  if (r.service === 'secretsmanager') return r.secretId;
  if (r.version !== undefined) return `${r.name}:${r.version}`;
  if (r.label !== undefined) return `${r.name}:${r.label}`;
  return r.name;
}
