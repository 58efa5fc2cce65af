// Who signs a read, and the client it goes through: the base credentials, or a role assumed with them
// (roleArn), in the configured Region or the one an ARN names. One client per (service, role, Region),
// made on first use. A role lives from its first successful AssumeRole on and is never dropped, as in the
// Workload Credentials Provider; at most maxRoles of them.
import type { Logger } from '../log.ts';
import type { AwsJsonClient } from './client.ts';
import { type CredentialSource, RefreshingCredentials } from './credentials.ts';
import { AssumeRoleError, AwsCallError, type AwsCredentials, RefusedError, type Service } from './types.ts';

/** Distinct Regions pscache reads from: a bound on clients an attacker holding the token could make. */
export const MAX_REGIONS = 64;

export interface PrincipalsOptions {
  base: CredentialSource;
  /** AssumeRole on `roleArn` with the base credentials (fetched at or after `since`, when given). */
  assume: (roleArn: string, since?: number) => Promise<AwsCredentials>;
  /** A client for `service` in `region`, signing with `credentials`. */
  makeClient: (service: Service, region: string, credentials: CredentialSource) => AwsJsonClient;
  /** The configured Region: where reads go unless an ARN names another. */
  region: string;
  maxRoles: number;
  log: Logger;
  now?: () => number;
}

interface Principal {
  credentials: CredentialSource;
  /** `service\0region` -> client. */
  clients: Map<string, AwsJsonClient>;
}

export class Principals {
  private readonly base: Principal;
  private readonly roles = new Map<string, Principal>();
  private readonly regions = new Set<string>();

  constructor(private readonly opts: PrincipalsOptions) {
    this.base = { credentials: opts.base, clients: new Map() };
    this.regions.add(opts.region);
  }

  /**
   * The client for a read of `service` under `roleArn` (undefined: the base credentials) in `region`
   * (undefined: the configured one). Throws RefusedError for a new role beyond maxRoles, or a new Region
   * beyond MAX_REGIONS.
   */
  client(service: Service, roleArn?: string, region?: string): AwsJsonClient {
    const where = region ?? this.opts.region;
    const who = roleArn === undefined ? this.base : this.role(roleArn);
    const key = `${service}\u0000${where}`;
    let c = who.clients.get(key);
    if (!c) {
      if (!this.regions.has(where)) {
        if (this.regions.size >= MAX_REGIONS) {
          throw new RefusedError(
            'TooManyRegions',
            `pscache reads from at most ${MAX_REGIONS} Regions; an ARN names one more`,
          );
        }
        this.regions.add(where);
      }
      c = this.opts.makeClient(service, where, who.credentials);
      who.clients.set(key, c);
    }
    return c;
  }

  /** Forgets every cached credential, the base's and each role's (a SnapStart restore). */
  invalidate(): boolean {
    for (const r of this.roles.values()) r.credentials.invalidate();
    return this.opts.base.invalidate();
  }

  close(): void {
    for (const p of [this.base, ...this.roles.values()]) for (const c of p.clients.values()) c.close();
  }

  private role(roleArn: string): Principal {
    const known = this.roles.get(roleArn);
    if (known) return known;
    if (this.roles.size >= this.opts.maxRoles) {
      throw new RefusedError(
        'MaxRolesExceeded',
        `the most roles pscache assumes (max_roles, PARAMETERS_SECRETS_EXTENSION_MAX_ROLES) is ${this.opts.maxRoles}, and all are in use; ${roleArn} is one more`,
      );
    }
    /** AssumeRole has worked once: from then on the role is never dropped. */
    let live = false;
    const credentials = new RefreshingCredentials(
      'role',
      async (_force, since) => {
        try {
          const creds = await this.opts.assume(roleArn, since);
          if (!live) {
            live = true;
            this.opts.log.info('role assumed', { roles: this.roles.size, max_roles: this.opts.maxRoles });
          }
          return creds;
        } catch (e) {
          // A role that never worked holds no place: the next read of it starts over.
          if (!live && this.roles.get(roleArn) === p) {
            this.roles.delete(roleArn);
            for (const c of p.clients.values()) c.close();
          }
          throw refusal(roleArn, e);
        }
      },
      this.opts.log,
      this.opts.now,
    );
    const p: Principal = { credentials, clients: new Map() };
    this.roles.set(roleArn, p);
    return p;
  }
}

/**
 * STS said no (AccessDenied, a role that does not exist or does not trust us, bad base credentials):
 * 403 AccessDeniedException, as the Workload Credentials Provider answers, naming STS's own code.
 * Throttling, 5xx, timeouts and connection failures stay what they are (429, 502, 504).
 */
function refusal(roleArn: string, e: unknown): unknown {
  if (!(e instanceof AwsCallError) || e.kind !== 'aws') return e;
  return new AssumeRoleError(
    'AccessDeniedException',
    `AssumeRole on ${roleArn} failed: ${e.code}: ${e.message}`,
    'aws',
    403,
    e.requestId,
  );
}
