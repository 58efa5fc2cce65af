// The emulator's data: the seed file (parse and validate), the in-memory parameters and secrets, fake KMS.
import { createCipheriv, createHmac, randomBytes, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { ParameterType, StoreFile, StoreParameter, StoreSecret, StoreSecretValue } from './types.ts';

export const DEFAULT_REGION = 'us-east-1';
export const DEFAULT_ACCOUNT = '123456789012';
export const PARAMETER_TYPES: readonly ParameterType[] = ['String', 'StringList', 'SecureString'];

// ---------------------------------------------------------------------------------------------
// Store file

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
  checkKeys(v, ['name', 'type', 'value', 'versions', 'labels', 'description'], where);
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
    ['name', 'secretString', 'secretBinary', 'versionId', 'description', 'arnSuffix', 'previous'],
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
  return out;
}

/** Checks an already-parsed store document; `source` names it in error messages. */
export function validateStore(doc: unknown, source: string): StoreFile {
  if (!isObject(doc)) throw new StoreError(`${source}: the store must be a JSON object`);
  checkKeys(doc, ['region', 'accountId', 'parameters', 'secrets', 'deny', 'denyOperations'], source);
  const out: StoreFile = {};
  const region = optStr(doc, 'region', source);
  if (region !== undefined) {
    if (!/^[a-z]{2}(-[a-z]+)+-\d+$/.test(region))
      throw new StoreError(`${source}: "region" "${region}" is not a region`);
    out.region = region;
  }
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
  const seen = new Set<string>();
  params.forEach((p, i) => {
    if (seen.has(p.name)) throw new StoreError(`${source}: parameters[${i}] ("${p.name}"): duplicate name`);
    seen.add(p.name);
  });
  const secrets = ((doc['secrets'] as unknown[] | undefined) ?? []).map((s, i) => parseSecret(s, i, source));
  seen.clear();
  secrets.forEach((s, i) => {
    if (seen.has(s.name)) throw new StoreError(`${source}: secrets[${i}] ("${s.name}"): duplicate name`);
    seen.add(s.name);
  });
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

// ---------------------------------------------------------------------------------------------
// Names

/** Why a parameter name is not acceptable to PutParameter, or undefined when it is. */
export function parameterNameProblem(name: string): string | undefined {
  if (name.length > 1011) return 'parameter name is longer than 1011 characters';
  if (!/^[a-zA-Z0-9_.\-/]+$/.test(name)) {
    return 'parameter name must contain only letters, digits and the symbols . - _ /';
  }
  if (name.includes('/') && !name.startsWith('/')) {
    return 'a parameter name with a "/" must be fully qualified (begin with "/")';
  }
  if (/^\/?(aws|ssm)/i.test(name))
    return 'parameter name can\'t be prefixed with "aws" or "ssm" (case-insensitive)';
  if (name.endsWith('/') || name.includes('//')) return 'parameter name has an empty path segment';
  return undefined;
}

export function parameterDepth(name: string): number {
  return name.split('/').filter(Boolean).length;
}

export function validLabel(label: string): boolean {
  return (
    label.length >= 1 &&
    label.length <= 100 &&
    /^[a-zA-Z0-9_.-]+$/.test(label) &&
    !/^[0-9]/.test(label) &&
    !/^(aws|ssm)/i.test(label)
  );
}

export function validSecretName(name: string): boolean {
  return name.length >= 1 && name.length <= 512 && /^[A-Za-z0-9/_+=.@-]+$/.test(name);
}

// ---------------------------------------------------------------------------------------------
// In-memory state

export interface ParamVersion {
  version: number;
  value: string;
  type: ParameterType;
  labels: string[];
  /** Epoch ms. */
  modified: number;
  description?: string;
}

export interface Param {
  name: string;
  arn: string;
  /** Ascending by version; the last is the latest. */
  versions: ParamVersion[];
}

export interface SecretVersion {
  id: string;
  secretString?: string;
  secretBinary?: Buffer;
  stages: string[];
  /** Epoch ms. */
  created: number;
}

export interface Secret {
  name: string;
  arn: string;
  created: number;
  changed: number;
  lastAccessed?: number;
  description?: string;
  versions: SecretVersion[];
  /** Epoch ms of the scheduled deletion, when marked for deletion. */
  deletionDate?: number;
  deletedAt?: number;
}

const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

export function randomAlnum(n: number): string {
  const bytes = randomBytes(n);
  let out = '';
  for (const b of bytes) out += ALNUM[b % ALNUM.length];
  return out;
}

/** All parameters and secrets of one emulator, plus the names that identify its account. */
export class State {
  readonly params = new Map<string, Param>();
  readonly secrets = new Map<string, Secret>();
  private readonly secretsByArn = new Map<string, Secret>();
  private sortedNames: string[] | undefined;

  constructor(
    readonly region: string,
    readonly accountId: string,
  ) {}

  parameterArn(name: string): string {
    return `arn:aws:ssm:${this.region}:${this.accountId}:parameter/${name.startsWith('/') ? name.slice(1) : name}`;
  }

  /** Parameter names in ascending order; cached until the next put or delete. */
  names(): string[] {
    if (!this.sortedNames) this.sortedNames = [...this.params.keys()].sort();
    return this.sortedNames;
  }

  putParameter(
    name: string,
    value: string,
    type: ParameterType,
    now: number,
    description?: string,
  ): ParamVersion {
    let p = this.params.get(name);
    if (!p) {
      p = { name, arn: this.parameterArn(name), versions: [] };
      this.params.set(name, p);
      this.sortedNames = undefined;
    }
    const version = (p.versions.at(-1)?.version ?? 0) + 1;
    const v: ParamVersion = { version, value, type, labels: [], modified: now };
    const desc = description ?? p.versions.at(-1)?.description;
    if (desc !== undefined) v.description = desc;
    p.versions.push(v);
    // SSM keeps 100 versions; the oldest unlabelled one goes first.
    if (p.versions.length > 100) {
      const idx = p.versions.findIndex((x) => x.labels.length === 0);
      if (idx >= 0) p.versions.splice(idx, 1);
    }
    return v;
  }

  deleteParameter(name: string): boolean {
    const ok = this.params.delete(name);
    if (ok) this.sortedNames = undefined;
    return ok;
  }

  secretArnPrefix(): string {
    return `arn:aws:secretsmanager:${this.region}:${this.accountId}:secret:`;
  }

  addSecret(name: string, now: number, suffix = randomAlnum(6), description?: string): Secret {
    const s: Secret = {
      name,
      arn: `${this.secretArnPrefix()}${name}-${suffix}`,
      created: now,
      changed: now,
      versions: [],
    };
    if (description !== undefined) s.description = description;
    this.secrets.set(name, s);
    this.secretsByArn.set(s.arn, s);
    return s;
  }

  removeSecret(s: Secret): void {
    this.secrets.delete(s.name);
    this.secretsByArn.delete(s.arn);
  }

  /** By name, full ARN, or partial ARN (without the random suffix), as Secrets Manager accepts. */
  findSecret(id: string): Secret | undefined {
    if (id.startsWith('arn:')) {
      const exact = this.secretsByArn.get(id);
      if (exact) return exact;
      const prefix = this.secretArnPrefix();
      return id.startsWith(prefix) ? this.secrets.get(id.slice(prefix.length)) : undefined;
    }
    return this.secrets.get(id);
  }

  /** Adds a version and moves each of its stages off the other versions (AWSCURRENT -> AWSPREVIOUS). */
  addSecretVersion(s: Secret, v: SecretVersion): void {
    const stages = v.stages;
    v.stages = [];
    s.versions.push(v);
    for (const stage of stages) this.moveStage(s, stage, v);
    s.changed = v.created;
  }

  /** Attaches `stage` to `to` only. Moving AWSCURRENT hands AWSPREVIOUS to the version that had it. */
  moveStage(s: Secret, stage: string, to: SecretVersion): void {
    const from = s.versions.find((x) => x !== to && x.stages.includes(stage));
    if (from) from.stages = from.stages.filter((x) => x !== stage);
    if (!to.stages.includes(stage)) to.stages.push(stage);
    if (stage === 'AWSCURRENT' && from) {
      for (const x of s.versions) if (x !== from) x.stages = x.stages.filter((y) => y !== 'AWSPREVIOUS');
      if (!from.stages.includes('AWSPREVIOUS')) from.stages.push('AWSPREVIOUS');
    }
  }

  /** Seeds from a validated store file; every version is dated `now` or just before it. */
  seed(store: StoreFile, now: number): void {
    for (const p of store.parameters ?? []) {
      const values = [...(p.versions ?? []), p.value];
      values.forEach((value, i) => {
        const v = this.putParameter(
          p.name,
          value,
          p.type ?? 'String',
          now - (values.length - 1 - i) * 60_000,
        );
        if (p.description !== undefined) v.description = p.description;
      });
      const param = this.params.get(p.name)!;
      for (const [label, ver] of Object.entries(p.labels ?? {})) {
        param.versions.find((x) => x.version === ver)?.labels.push(label);
      }
    }
    for (const s of store.secrets ?? []) {
      const secret = this.addSecret(s.name, now - 120_000, s.arnSuffix, s.description);
      if (s.previous) {
        this.addSecretVersion(secret, toVersion(s.previous, ['AWSCURRENT'], now - 60_000));
      }
      this.addSecretVersion(secret, toVersion(s, ['AWSCURRENT'], now));
    }
  }
}

function toVersion(v: StoreSecretValue, stages: string[], created: number): SecretVersion {
  const out: SecretVersion = { id: v.versionId ?? randomUUID(), stages, created };
  if (v.secretString !== undefined) out.secretString = v.secretString;
  if (v.secretBinary !== undefined) out.secretBinary = Buffer.from(v.secretBinary, 'base64');
  return out;
}

// ---------------------------------------------------------------------------------------------
// Fake KMS

// Header bytes of a real KMS ciphertext blob, so the base64 starts with "AQICAH" like the real thing.
const KMS_HEADER = Buffer.from([0x01, 0x02, 0x02, 0x00, 0x78]);

/**
 * Encrypts SecureString values read without decryption. The key is random per emulator; the IV is
 * derived from (name, version), so one version always reads as the same ciphertext, as in SSM.
 */
export class FakeKms {
  private readonly key = randomBytes(32);

  encrypt(value: string, context: string): string {
    const iv = createHmac('sha256', this.key).update(context).digest().subarray(0, 12);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv);
    const ct = Buffer.concat([cipher.update(value, 'utf8'), cipher.final()]);
    return Buffer.concat([KMS_HEADER, iv, cipher.getAuthTag(), ct]).toString('base64');
  }
}
