// Who signs a read, and the client it goes through: the base credentials, or a role assumed with them
// (roleArn), in the configured Region or another of its partition that an ARN names. One client per
// (service, role, Region), made on first use. A role lives from its first successful AssumeRole on and is
// never dropped, as in the Workload Credentials Provider; at most maxRoles of them. A Region counts
// against its limit only once a call there has succeeded: made-up Regions never do.
import type { Logger } from '../log.ts';
import type { AwsJsonClient } from './client.ts';
import { type CredentialSource, RefreshingCredentials } from './credentials.ts';
import { inPartition, type PartitionRule as Partition, partitionRule } from './endpoints.ts';
import { AssumeRoleError, AwsCallError, type AwsCredentials, RefusedError, type Service } from './types.ts';

/** Distinct Regions pscache reads from, counted once a call there has succeeded. */
export const MAX_REGIONS = 64;
/**
 * Regions named that have not answered a call yet, at once, with the clients made for them. One more
 * makes the oldest forget its clients (calls in flight on them finish): a flood of made-up Regions
 * holds at most this many Regions' clients, and never takes a place among MAX_REGIONS.
 */
export const MAX_UNANSWERED_REGIONS = 8;

export interface PrincipalsOptions {
  base: CredentialSource;
  /** AssumeRole on `roleArn` with the base credentials (fetched at or after `since`, when given). */
  assume: (roleArn: string, since?: number) => Promise<AwsCredentials>;
  /**
   * A client for `service` in `region`, signing with `credentials`; it calls `succeeded` after each
   * successful call (undefined for the configured Region, which always counts).
   */
  makeClient: (
    service: Service,
    region: string,
    credentials: CredentialSource,
    succeeded: (() => void) | undefined,
  ) => AwsJsonClient;
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
  /** Regions a call has succeeded in (the configured one from the start). */
  private readonly regions = new Set<string>();
  /** Regions without a successful call yet, oldest first, with where each client made for them is kept. */
  private readonly unanswered = new Map<
    string,
    Array<{ clients: Map<string, AwsJsonClient>; key: string }>
  >();
  private readonly partition: Partition;

  constructor(private readonly opts: PrincipalsOptions) {
    this.base = { credentials: opts.base, clients: new Map() };
    this.regions.add(opts.region);
    this.partition = partitionRule(opts.region);
  }

  /**
   * The client for a read of `service` under `roleArn` (undefined: the base credentials) in `region`
   * (undefined: the configured one). Throws RefusedError for a new role beyond maxRoles, or a new Region
   * beyond MAX_REGIONS.
   */
  client(service: Service, roleArn?: string, region?: string): AwsJsonClient {
    const where = region ?? this.opts.region;
    if (!inPartition(where, this.partition)) {
      throw new RefusedError(
        'BadRequest',
        `Region ${JSON.stringify(where.slice(0, 64))} is not a Region of partition ${this.partition.name} (pscache's Region is ${this.opts.region})`,
      );
    }
    const who = roleArn === undefined ? this.base : this.role(roleArn);
    const key = `${service}\u0000${where}`;
    let c = who.clients.get(key);
    if (!c) {
      const counted = this.regions.has(where);
      if (!counted) this.track(where, who.clients, key);
      c = this.opts.makeClient(
        service,
        where,
        who.credentials,
        counted ? undefined : () => this.succeeded(where),
      );
      who.clients.set(key, c);
    }
    return c;
  }

  /** A client is being made for a Region no call has succeeded in yet. */
  private track(region: string, clients: Map<string, AwsJsonClient>, key: string): void {
    if (this.regions.size >= MAX_REGIONS) {
      throw new RefusedError(
        'TooManyRegions',
        `pscache reads from at most ${MAX_REGIONS} Regions; an ARN names one more`,
      );
    }
    let made = this.unanswered.get(region);
    if (made === undefined) {
      if (this.unanswered.size >= MAX_UNANSWERED_REGIONS) {
        const [oldest, itsClients] = this.unanswered.entries().next().value!;
        this.unanswered.delete(oldest);
        for (const m of itsClients) m.clients.delete(m.key);
      }
      made = [];
      this.unanswered.set(region, made);
    }
    made.push({ clients, key });
  }

  /** A call in `region` succeeded: it counts from now on, and its clients are kept. */
  private succeeded(region: string): void {
    if (this.regions.has(region) || this.regions.size >= MAX_REGIONS) return;
    this.regions.add(region);
    this.unanswered.delete(region);
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
