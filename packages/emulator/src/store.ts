// The seed store file: parse and validate it (every error names the file and the entry).
import { readFileSync } from 'node:fs';
import {
  MAX_TAGS,
  PARAMETER_TYPES,
  parameterNameProblem,
  REGION,
  tagProblem,
  validLabel,
  validSecretName,
} from './state.ts';
import type { ParameterType, StoreFile, StoreParameter, StoreSecret, StoreSecretValue } from './types.ts';

class StoreError extends Error {}

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => v !== null && typeof v === 'object' && !Array.isArray(v);

function checkKeys(o: Json, allowed: readonly string[], where: string): void {
  for (const k of Object.keys(o)) {
    if (k.startsWith('$')) continue;
    if (!allowed.includes(k))
      throw new StoreError(`${where}: unknown key "${k}" (allowed: ${allowed.join(', ')})`);
  }
}

function optStr(o: Json, key: string, where: string): string | undefined {
  const v = o[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'string') throw new StoreError(`${where}: "${key}" must be a string`);
  return v;
}

function strList(o: Json, key: string, where: string): string[] | undefined {
  const v = o[key];
  if (v === undefined) return undefined;
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) {
    throw new StoreError(`${where}: "${key}" must be an array of strings`);
  }
  return v as string[];
}

function optRegion(o: Json, where: string): string | undefined {
  const region = optStr(o, 'region', where);
  if (region !== undefined && !REGION.test(region))
    throw new StoreError(`${where}: "region" "${region}" is not a region (like us-east-1)`);
  return region;
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
const UUIDISH = /^[A-Za-z0-9-]{32,64}$/;

function parseSecretValue(o: Json, where: string): StoreSecretValue {
  const secretString = optStr(o, 'secretString', where);
  const secretBinary = optStr(o, 'secretBinary', where);
  const versionId = optStr(o, 'versionId', where);
  if ((secretString === undefined) === (secretBinary === undefined)) {
    throw new StoreError(`${where}: give exactly one of "secretString" and "secretBinary"`);
  }
  if (secretBinary !== undefined && (secretBinary.length % 4 !== 0 || !BASE64.test(secretBinary))) {
    throw new StoreError(`${where}: "secretBinary" must be base64`);
  }
  if (versionId !== undefined && !UUIDISH.test(versionId)) {
    throw new StoreError(`${where}: "versionId" must be 32-64 letters, digits or hyphens (a UUID)`);
  }
  const out: StoreSecretValue = {};
  if (secretString !== undefined) out.secretString = secretString;
  if (secretBinary !== undefined) out.secretBinary = secretBinary;
  if (versionId !== undefined) out.versionId = versionId;
  return out;
}

function parseParameter(v: unknown, i: number, file: string): StoreParameter {
  let where = `${file}: parameters[${i}]`;
  if (!isObject(v)) throw new StoreError(`${where}: must be an object`);
  const name = optStr(v, 'name', where);
  if (!name) throw new StoreError(`${where}: "name" is required`);
  where = `${where} ("${name}")`;
  checkKeys(v, ['name', 'type', 'value', 'versions', 'labels', 'description', 'region'], where);
  const nameProblem = parameterNameProblem(name);
  if (nameProblem) throw new StoreError(`${where}: ${nameProblem}`);
  const type = optStr(v, 'type', where) ?? 'String';
  if (!PARAMETER_TYPES.includes(type as ParameterType)) {
    throw new StoreError(`${where}: "type" must be String, StringList or SecureString, not "${type}"`);
  }
  const value = optStr(v, 'value', where);
  if (value === undefined || value === '') throw new StoreError(`${where}: "value" is required (non-empty)`);
  const versions = strList(v, 'versions', where);
  const latest = (versions?.length ?? 0) + 1;
  let labels: Record<string, number> | undefined;
  if (v['labels'] !== undefined) {
    if (!isObject(v['labels']))
      throw new StoreError(`${where}: "labels" must be an object of label -> version`);
    labels = {};
    for (const [label, ver] of Object.entries(v['labels'])) {
      if (typeof ver !== 'number' || !Number.isInteger(ver) || ver < 1 || ver > latest) {
        throw new StoreError(`${where}: label "${label}" must name a version from 1 to ${latest}`);
      }
      if (!validLabel(label)) throw new StoreError(`${where}: "${label}" is not a valid label`);
      labels[label] = ver;
    }
  }
  const out: StoreParameter = { name, type: type as ParameterType, value };
  if (versions) out.versions = versions;
  if (labels) out.labels = labels;
  const description = optStr(v, 'description', where);
  if (description !== undefined) out.description = description;
  const region = optRegion(v, where);
  if (region !== undefined) out.region = region;
  return out;
}

function parseSecret(v: unknown, i: number, file: string): StoreSecret {
  let where = `${file}: secrets[${i}]`;
  if (!isObject(v)) throw new StoreError(`${where}: must be an object`);
  const name = optStr(v, 'name', where);
  if (!name) throw new StoreError(`${where}: "name" is required`);
  where = `${where} ("${name}")`;
  checkKeys(
    v,
    [
      'name',
      'secretString',
      'secretBinary',
      'versionId',
      'description',
      'arnSuffix',
      'previous',
      'region',
      'tags',
    ],
    where,
  );
  if (!validSecretName(name)) {
    throw new StoreError(`${where}: name must be 1-512 of letters, digits and /_+=.@-`);
  }
  const out: StoreSecret = { name, ...parseSecretValue(v, where) };
  const description = optStr(v, 'description', where);
  if (description !== undefined) out.description = description;
  const arnSuffix = optStr(v, 'arnSuffix', where);
  if (arnSuffix !== undefined) {
    if (!/^[A-Za-z0-9]{6}$/.test(arnSuffix))
      throw new StoreError(`${where}: "arnSuffix" must be 6 letters or digits`);
    out.arnSuffix = arnSuffix;
  }
  if (v['previous'] !== undefined) {
    const pw = `${where}.previous`;
    if (!isObject(v['previous'])) throw new StoreError(`${pw}: must be an object`);
    checkKeys(v['previous'], ['secretString', 'secretBinary', 'versionId'], pw);
    out.previous = parseSecretValue(v['previous'], pw);
  }
  const region = optRegion(v, where);
  if (region !== undefined) out.region = region;
  if (v['tags'] !== undefined) out.tags = parseTags(v['tags'], where);
  return out;
}

function parseTags(v: unknown, where: string): Record<string, string> {
  if (!isObject(v) || Object.values(v).some((x) => typeof x !== 'string')) {
    throw new StoreError(`${where}: "tags" must be an object of tag key -> string value`);
  }
  const entries = Object.entries(v as Record<string, string>);
  if (entries.length > MAX_TAGS) throw new StoreError(`${where}: at most ${MAX_TAGS} tags`);
  for (const [key, value] of entries) {
    const problem = tagProblem(key, value);
    if (problem) throw new StoreError(`${where}: tag "${key}": ${problem}`);
  }
  return Object.fromEntries(entries);
}

/** Throws on a second entry of one name in one Region. */
function checkUnique(entries: { name: string; region?: string }[], key: string, source: string): void {
  const seen = new Set<string>();
  entries.forEach((e, i) => {
    const id = `${e.region ?? ''} ${e.name}`;
    if (seen.has(id)) throw new StoreError(`${source}: ${key}[${i}] ("${e.name}"): duplicate name`);
    seen.add(id);
  });
}

/** Checks an already-parsed store document; `source` names it in error messages. */
export function validateStore(doc: unknown, source: string): StoreFile {
  if (!isObject(doc)) throw new StoreError(`${source}: the store must be a JSON object`);
  checkKeys(doc, ['region', 'accountId', 'parameters', 'secrets', 'deny', 'denyOperations'], source);
  const out: StoreFile = {};
  const region = optRegion(doc, source);
  if (region !== undefined) out.region = region;
  const accountId = optStr(doc, 'accountId', source);
  if (accountId !== undefined) {
    if (!/^\d{12}$/.test(accountId)) throw new StoreError(`${source}: "accountId" must be 12 digits`);
    out.accountId = accountId;
  }
  for (const key of ['parameters', 'secrets'] as const) {
    if (doc[key] !== undefined && !Array.isArray(doc[key]))
      throw new StoreError(`${source}: "${key}" must be an array`);
  }
  const params = ((doc['parameters'] as unknown[] | undefined) ?? []).map((p, i) =>
    parseParameter(p, i, source),
  );
  checkUnique(params, 'parameters', source);
  const secrets = ((doc['secrets'] as unknown[] | undefined) ?? []).map((s, i) => parseSecret(s, i, source));
  checkUnique(secrets, 'secrets', source);
  if (params.length) out.parameters = params;
  if (secrets.length) out.secrets = secrets;
  const deny = strList(doc, 'deny', source);
  if (deny) out.deny = deny;
  const denyOperations = strList(doc, 'denyOperations', source);
  if (denyOperations) out.denyOperations = denyOperations;
  return out;
}

/** Reads and validates a store file; throws an Error naming the file and the bad entry. */
export function loadStoreFile(path: string): StoreFile {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new Error(`cannot read store file ${path}: ${(err as Error).message}`);
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new Error(`store file ${path} is not valid JSON: ${(err as Error).message}`);
  }
  try {
    return validateStore(doc, `store file ${path}`);
  } catch (err) {
    throw new Error((err as Error).message);
  }
}
