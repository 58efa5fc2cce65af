// Who may read what: the deny lists (resources, operations, roles) and the per-role allow lists.

/** `ssm:GetParameter`, `AmazonSSM.GetParameter`, `secretsmanager.X` -> the bare operation name. */
export function bareOperation(op: string): string {
  const i = Math.max(op.lastIndexOf(':'), op.lastIndexOf('.'));
  return i >= 0 ? op.slice(i + 1) : op;
}

/** Names, each exact or a prefix (written with a trailing `*`). */
export class NameSet {
  private exact = new Set<string>();
  private prefixes: string[] = [];

  constructor(names: readonly string[] = []) {
    this.add(names);
  }

  add(names: readonly string[]): void {
    for (const n of names) {
      if (n.endsWith('*')) this.prefixes.push(n.slice(0, -1));
      else this.exact.add(n);
    }
  }

  clear(): void {
    this.exact.clear();
    this.prefixes = [];
  }

  /** True when any of the candidates is in the set. */
  has(candidates: readonly string[]): boolean {
    for (const c of candidates) {
      if (this.exact.has(c)) return true;
      for (const p of this.prefixes) if (c.startsWith(p)) return true;
    }
    return false;
  }

  get empty(): boolean {
    return this.exact.size === 0 && this.prefixes.length === 0;
  }
}

/** What a read checks: whether any of the names a resource goes by (name, ARN, the id given) is refused. */
export interface ResourcePolicy {
  /** True when nothing is refused (lets reads skip working out their candidates). */
  readonly empty: boolean;
  denies(candidates: readonly string[]): boolean;
}

/** Resources and whole operations the caller is not allowed. */
export class DenyList implements ResourcePolicy {
  private readonly resources = new NameSet();
  private ops = new Set<string>();

  add(resources: readonly string[]): void {
    this.resources.add(resources);
  }

  addOperations(ops: readonly string[]): void {
    for (const op of ops) this.ops.add(bareOperation(op));
  }

  clear(): void {
    this.resources.clear();
    this.ops.clear();
  }

  denies(candidates: readonly string[]): boolean {
    return this.resources.has(candidates);
  }

  deniesOperation(op: string): boolean {
    return this.ops.has(op);
  }

  get empty(): boolean {
    return this.resources.empty;
  }
}

/** The deny list, plus: only what the role's allow list names. */
class AllowListed implements ResourcePolicy {
  readonly empty = false;

  constructor(
    private readonly base: ResourcePolicy,
    private readonly allowed: NameSet,
  ) {}

  denies(candidates: readonly string[]): boolean {
    return this.base.denies(candidates) || !this.allowed.has(candidates);
  }
}

/** Per-role allow lists: a role with one reads only what it names. */
export class RoleAccess {
  private readonly roles = new Map<string, NameSet>();

  set(roleArn: string, resources: readonly string[] | undefined): void {
    if (resources === undefined) this.roles.delete(roleArn);
    else this.roles.set(roleArn, new NameSet(resources));
  }

  clear(): void {
    this.roles.clear();
  }

  /** The policy for a call signed by `roleArn`'s credentials (or by no role). */
  policy(base: ResourcePolicy, roleArn: string | undefined): ResourcePolicy {
    const allowed = roleArn === undefined ? undefined : this.roles.get(roleArn);
    return allowed ? new AllowListed(base, allowed) : base;
  }
}

/** Checks untrusted JSON (the control API) or API input: an array of strings. */
export function stringArray(v: unknown, what: string): string[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string'))
    throw new Error(`${what} must be an array of strings`);
  return v as string[];
}
