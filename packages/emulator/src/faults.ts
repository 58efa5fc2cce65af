// Misbehaviour on request: fault rules (errors, latency, hangs, resets, broken bodies) and rate limits.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { AwsError } from './errors.ts';
import { alive, drained, send } from './http.ts';
import { bareOperation } from './policy.ts';
import { FAULT_KINDS, type FaultKind, type FaultRule, type RateLimitOptions } from './types.ts';

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

/** The bodies a service's broken answers are made of. */
export interface FaultBodies {
  contentType: string;
  /** A whole valid answer; reset-mid-body sends half of it. */
  sample: string;
  /** An answer cut short (malformed). */
  truncated: string;
  /** A valid answer is `head`, filler bytes, `tail` (huge). */
  head: string;
  tail: string;
  /** What endless starts with before its filler. */
  endlessHead: string;
}

/** What a fault needs of the service it breaks. */
export interface FaultTarget {
  bodies: FaultBodies;
  /** The service's answer to an internal failure. */
  internalError(): AwsError;
  /** Answers an error in the service's protocol. */
  sendError(res: ServerResponse, err: AwsError, requestId: string): void;
}

const HUGE_BYTES = 50 * 1024 * 1024;
const ENDLESS_MAX_MS = 60_000;
const CHUNK = Buffer.alloc(64 * 1024, 'a');

/** Answers (or, for resets and hangs, does not) as the fault says. `closed` is true once the emulator stops. */
export async function sendFault(
  kind: FaultKind,
  target: FaultTarget,
  req: IncomingMessage,
  res: ServerResponse,
  requestId: string,
  closed: () => boolean,
): Promise<void> {
  const { bodies } = target;
  const headers = { 'content-type': bodies.contentType, 'x-amzn-RequestId': requestId };
  switch (kind) {
    case 'throttle':
      return target.sendError(res, new AwsError('ThrottlingException', 'Rate exceeded'), requestId);
    case '500':
      return target.sendError(res, target.internalError(), requestId);
    case '503':
      return target.sendError(res, new AwsError('ServiceUnavailable', 'Service Unavailable', 503), requestId);
    case 'reset':
      req.socket.destroy();
      return;
    case 'reset-mid-body': {
      const full = Buffer.from(bodies.sample);
      res.writeHead(200, { ...headers, 'content-length': full.length });
      res.write(full.subarray(0, full.length >> 1), () => req.socket.destroy());
      return;
    }
    case 'malformed':
      return send(res, 200, bodies.truncated, headers);
    case 'hang':
      // Never answer; close() or the client's timeout ends it.
      return;
    case 'wrong-content-type':
      return send(res, 200, '<html><body>Service unavailable</body></html>', { 'content-type': 'text/html' });
    case 'huge': {
      const size = HUGE_BYTES - bodies.head.length - bodies.tail.length;
      res.writeHead(200, { ...headers, 'content-length': HUGE_BYTES });
      res.write(bodies.head);
      await stream(res, size, closed);
      if (alive(res)) res.end(bodies.tail);
      return;
    }
    case 'endless': {
      res.writeHead(200, headers);
      res.write(bodies.endlessHead);
      await stream(res, undefined, closed);
      if (alive(res)) res.end();
      return;
    }
  }
}

/** Writes `bytes` filler bytes (or, when undefined, until the client leaves or 60 s pass), honouring backpressure. */
async function stream(res: ServerResponse, bytes: number | undefined, closed: () => boolean): Promise<void> {
  const deadline = Date.now() + ENDLESS_MAX_MS;
  let left = bytes ?? Number.POSITIVE_INFINITY;
  while (left > 0 && alive(res) && !closed()) {
    if (bytes === undefined && Date.now() > deadline) return;
    const n = Math.min(CHUNK.length, left);
    left -= n;
    if (!res.write(n === CHUNK.length ? CHUNK : CHUNK.subarray(0, n))) await drained(res);
  }
}
