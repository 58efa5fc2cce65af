// The emulator's data in memory: parameters and secrets per Region, their names and ARNs, fake KMS.
import { createCipheriv, createHmac, randomBytes, randomUUID } from 'node:crypto';
import type { ParameterType, StoreFile, StoreParameter, StoreSecret, StoreSecretValue } from './types.ts';

export const DEFAULT_REGION = 'us-east-1';
export const DEFAULT_ACCOUNT = '123456789012';
export const PARAMETER_TYPES: readonly ParameterType[] = ['String', 'StringList', 'SecureString'];
/** What a Region name looks like (us-east-1, eu-central-2, us-gov-west-1, ...). */
export const REGION = /^[a-z]{2}(-[a-z]+)+-\d+$/;

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

/** Tags a secret may carry (Secrets Manager's quota). */
export const MAX_TAGS = 50;

/** Why a tag is not acceptable to Secrets Manager (key 1-128, value 0-256 characters, no aws: prefix). */
export function tagProblem(key: string, value: string): string | undefined {
  if (key.length < 1 || key.length > 128) return 'a tag key must be 1 to 128 characters';
  if (value.length > 256) return 'a tag value must be at most 256 characters';
  if (/^aws:/i.test(key)) return 'a tag key must not start with "aws:" (reserved for AWS use)';
  return undefined;
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
  /** Tag key -> value, in the order they were given. */
  tags: Map<string, string>;
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
      tags: new Map(),
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

  /** Adds a parameter from a validated store entry, replacing any of that name; versions dated up to `now`. */
  seedParameter(p: StoreParameter, now: number): Param {
    this.deleteParameter(p.name);
    const values = [...(p.versions ?? []), p.value];
    values.forEach((value, i) => {
      const v = this.putParameter(p.name, value, p.type ?? 'String', now - (values.length - 1 - i) * 60_000);
      if (p.description !== undefined) v.description = p.description;
    });
    const param = this.params.get(p.name)!;
    for (const [label, ver] of Object.entries(p.labels ?? {})) {
      param.versions.find((x) => x.version === ver)?.labels.push(label);
    }
    return param;
  }

  /** Adds a secret from a validated store entry, replacing any of that name. */
  seedSecret(s: StoreSecret, now: number): Secret {
    const old = this.secrets.get(s.name);
    if (old) this.removeSecret(old);
    const secret = this.addSecret(s.name, now - 120_000, s.arnSuffix, s.description);
    for (const [k, v] of Object.entries(s.tags ?? {})) secret.tags.set(k, v);
    if (s.previous) this.addSecretVersion(secret, toVersion(s.previous, ['AWSCURRENT'], now - 60_000));
    this.addSecretVersion(secret, toVersion(s, ['AWSCURRENT'], now));
    return secret;
  }
}

/** One State per Region, made on first use; the default Region holds what names none. */
export class Regions {
  private readonly states = new Map<string, State>();

  constructor(
    readonly defaultRegion: string,
    readonly accountId: string,
  ) {}

  get(region: string = this.defaultRegion): State {
    let s = this.states.get(region);
    if (!s) {
      s = new State(region, this.accountId);
      this.states.set(region, s);
    }
    return s;
  }

  /** Seeds a validated store; returns the ARNs of what it added, in order. */
  seed(store: StoreFile, now: number): { parameters: string[]; secrets: string[] } {
    return {
      parameters: (store.parameters ?? []).map((p) => this.get(p.region).seedParameter(p, now).arn),
      secrets: (store.secrets ?? []).map((s) => this.get(s.region).seedSecret(s, now).arn),
    };
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
