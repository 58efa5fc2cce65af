// What the emulator does to a request before answering it: injected faults, denials, rate limits.
import { FAULT_KINDS, type FaultKind, type FaultRule, type RateLimitOptions } from './types.ts';

/** `ssm:GetParameter`, `AmazonSSM.GetParameter`, `secretsmanager.X` -> the bare operation name. */
export function bareOperation(op: string): string {
  const i = Math.max(op.lastIndexOf(':'), op.lastIndexOf('.'));
  return i >= 0 ? op.slice(i + 1) : op;
}

/** Parses fault rules from untrusted JSON (the control endpoint) or checks them (the API). */
export function parseFaultRules(v: unknown): FaultRule[] {
  if (!Array.isArray(v)) throw new Error('faults must be a JSON array of rules');
  return v.map((r, i) => {
    const where = `faults[${i}]`;
    if (r === null || typeof r !== 'object' || Array.isArray(r))
      throw new Error(`${where} must be an object`);
    const o = r as Record<string, unknown>;
    for (const k of Object.keys(o)) {
      if (!['operation', 'name', 'latencyMs', 'error', 'times'].includes(k))
        throw new Error(`${where}: unknown key "${k}"`);
    }
    const rule: FaultRule = {};
    if (o['operation'] !== undefined) {
      if (typeof o['operation'] !== 'string') throw new Error(`${where}.operation must be a string`);
      rule.operation = o['operation'];
    }
    if (o['name'] !== undefined) {
      if (typeof o['name'] !== 'string') throw new Error(`${where}.name must be a string`);
      rule.name = o['name'];
    }
    for (const k of ['latencyMs', 'times'] as const) {
      const n = o[k];
      if (n === undefined) continue;
      if (typeof n !== 'number' || !Number.isFinite(n) || n < 0)
        throw new Error(`${where}.${k} must be a number >= 0`);
      rule[k] = n;
    }
    if (o['error'] !== undefined) {
      if (!FAULT_KINDS.includes(o['error'] as FaultKind)) {
        throw new Error(`${where}.error must be one of ${FAULT_KINDS.join(', ')}`);
      }
      rule.error = o['error'] as FaultKind;
    }
    return rule;
  });
}

export interface FaultDecision {
  latencyMs: number;
  error: FaultKind | undefined;
}

/** Active fault rules. Every matching rule with calls left applies: latencies add up, the first error wins. */
export class FaultTable {
  private rules: { rule: FaultRule; op: string | undefined; left: number }[] = [];

  set(rules: FaultRule[]): void {
    this.rules = parseFaultRules(rules).map((rule) => ({
      rule,
      op: rule.operation === undefined || rule.operation === '*' ? undefined : bareOperation(rule.operation),
      left: rule.times ?? Number.POSITIVE_INFINITY,
    }));
  }

  clear(): void {
    this.rules = [];
  }

  match(op: string, names: readonly string[]): FaultDecision | undefined {
    if (this.rules.length === 0) return undefined;
    let decision: FaultDecision | undefined;
    for (const r of this.rules) {
      if (r.left <= 0) continue;
      if (r.op !== undefined && r.op !== op) continue;
      if (r.rule.name !== undefined && !names.includes(r.rule.name)) continue;
      r.left--;
      decision ??= { latencyMs: 0, error: undefined };
      decision.latencyMs += r.rule.latencyMs ?? 0;
      decision.error ??= r.rule.error;
    }
    return decision;
  }
}

/** Resources (exact, or prefix with a trailing `*`) and whole operations the caller is not allowed. */
export class DenyList {
  private exact = new Set<string>();
  private prefixes: string[] = [];
  private ops = new Set<string>();

  add(resources: readonly string[]): void {
    for (const r of resources) {
      if (r.endsWith('*')) this.prefixes.push(r.slice(0, -1));
      else this.exact.add(r);
    }
  }

  addOperations(ops: readonly string[]): void {
    for (const op of ops) this.ops.add(bareOperation(op));
  }

  clear(): void {
    this.exact.clear();
    this.prefixes = [];
    this.ops.clear();
  }

  /** True when any of the names a resource goes by (name, ARN, the id given) is denied. */
  denies(candidates: readonly string[]): boolean {
    for (const c of candidates) {
      if (this.exact.has(c)) return true;
      for (const p of this.prefixes) if (c.startsWith(p)) return true;
    }
    return false;
  }

  deniesOperation(op: string): boolean {
    return this.ops.has(op);
  }

  get empty(): boolean {
    return this.exact.size === 0 && this.prefixes.length === 0;
  }
}

/** A token bucket holding at most one second's worth of calls. */
class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    private readonly tps: number,
    now: number,
  ) {
    this.tokens = tps;
    this.last = now;
  }

  take(now: number): boolean {
    this.tokens = Math.min(this.tps, this.tokens + ((now - this.last) / 1000) * this.tps);
    this.last = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}

const SSM_READS = new Set(['GetParameter', 'GetParameters', 'GetParametersByPath']);
const SECRETS_READS = new Set(['GetSecretValue', 'BatchGetSecretValue', 'DescribeSecret']);

/** Per-family throughput limits, as the services' default quotas apply them. */
export class RateLimiter {
  private ssm: TokenBucket | undefined;
  private secrets: TokenBucket | undefined;

  set(opts: RateLimitOptions | undefined, now: number): void {
    for (const k of ['ssmTps', 'secretsTps'] as const) {
      const v = opts?.[k];
      if (v !== undefined && (typeof v !== 'number' || !(v > 0)))
        throw new Error(`ratelimit.${k} must be a number > 0`);
    }
    this.ssm = opts?.ssmTps ? new TokenBucket(opts.ssmTps, now) : undefined;
    this.secrets = opts?.secretsTps ? new TokenBucket(opts.secretsTps, now) : undefined;
  }

  /** False when the call is over its family's rate. */
  allow(op: string, now: number): boolean {
    if (this.ssm && SSM_READS.has(op)) return this.ssm.take(now);
    if (this.secrets && SECRETS_READS.has(op)) return this.secrets.take(now);
    return true;
  }
}
