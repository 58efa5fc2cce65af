// The only caller of upstream: single reads, batches of reads (GetParameters / BatchGetSecretValue, shared
// by concurrent misses through the batch window), path listings (every page of GetParametersByPath) and
// prefetch's tag discovery. Each read goes through the client of its role and Region (an ARN naming
// another Region is read there). It turns answers into rendered drop-in bodies and knows nothing of the cache.

import { type AwsJsonClient, type CallOptions, MAX_RESPONSE_BYTES } from '../aws/client.ts';
import type { Upstream } from '../aws/index.ts';
import { batchGetSecretValue, batchGetSecretValueByFilters, getSecretValue } from '../aws/secretsmanager.ts';
import { getParameter, getParameters, getParametersByPath } from '../aws/ssm.ts';
import { AwsCallError, type Service, type WireParameter } from '../aws/types.ts';
import { type Clock, systemClock } from '../clock.ts';
import {
  answers,
  arnRegion,
  batchable,
  batchId,
  type ItemRequest,
  type Loaded,
  loadedParameter,
  loadedSecret,
  type ParameterRequest,
  type PathRequest,
} from '../items.ts';
import type { Logger } from '../log.ts';
import { parameterShape } from '../shapes.ts';
import { Batcher } from './batcher.ts';
import { BATCH_LIMIT, type LoadContext, type Outcome, PATH_ITEM_LIMIT, PathTooLargeError } from './types.ts';

export type { LoadContext, Outcome } from './types.ts';
// Defined in types.ts, a leaf: errors.ts maps PathTooLargeError without loading the loader (and the AWS
// clients below it) into every start.
export { PATH_ITEM_LIMIT, PathTooLargeError };

/** A path listing: its rendered body, and each item as a single read would have answered it. */
export interface PathListing {
  body: Buffer;
  items: Array<{ request: ParameterRequest; loaded: Loaded }>;
}

/** A secret found by tag discovery, as a read of its name would have answered it. */
export interface Discovered {
  request: ItemRequest;
  loaded: Loaded;
}

/** Most pages a path listing reads (500 parameters come in 51 pages of 10; SSM may answer fewer a page). */
export const PATH_MAX_PAGES = 1000;
/** After a batch call is refused as a whole (permission, unknown operation), single calls for this long. */
export const BATCH_BACKOFF_MS = 5 * 60 * 1000;

export interface Loader {
  /** One item; batched with others that arrive within the batch window when it can be. */
  one(r: ItemRequest, ctx?: LoadContext): Promise<Loaded>;
  /** Several items as batch calls (a batch route, prefetch, the batch window): each gets its own outcome. */
  many(rs: readonly ItemRequest[], ctx?: LoadContext): Promise<Outcome[]>;
  /** Every page of a path, stopping as soon as it holds more than PATH_ITEM_LIMIT parameters. */
  path(p: PathRequest, ctx?: LoadContext): Promise<PathListing>;
}

/** What prefetch asks of the loader besides reads. */
export interface Discovery {
  /**
   * Secrets carrying tag key `key` (any value; a prefix match, as Secrets Manager's tag-key filter), one
   * page of BatchGetSecretValue with that filter at a time, each secret under its Name; `errors` counts
   * the secrets of the page found but not readable (Errors entries). Each page asks for at most `want()`
   * secrets (and at most 20); paging stops when `want()` is 0 or the pages run out. One page is in memory
   * at a time: the caller caches it (or drops it) before asking for the next.
   */
  secretsTagged(
    key: string,
    roleArn: string | undefined,
    want: () => number,
  ): AsyncGenerator<{ found: Discovered[]; errors: number }, void, undefined>;
  /**
   * The requests of values already in hand (a discovery call, a path listing): the next load of each of
   * these very request objects answers from its value instead of calling upstream. Loads of any other
   * request, of the same key included (a refreshNow), still go upstream.
   */
  primed(items: readonly Discovered[]): ItemRequest[];
}

export interface LoaderOptions {
  /** How long a single miss waits for others to share one batch call (ms); 0 = no batch window. */
  batchWindowMs: number;
  /** An ARN naming another Region is read from that Region (false: everything from the configured one). */
  crossRegion?: boolean;
  log: Logger;
  clock?: Clock;
}

const callOptions = (ctx: LoadContext | undefined): CallOptions | undefined => {
  if (!ctx) return undefined;
  const o: CallOptions = {};
  // Stryker disable next-line ConditionalExpression: equivalent (→ true): an undefined maxAttempts is the client's default (`opts.maxAttempts ?? default`)
  if (ctx.attempts !== undefined) o.maxAttempts = ctx.attempts;
  // Stryker disable next-line ConditionalExpression: equivalent (→ true): an undefined signal is no signal to the client (`opts.signal?.aborted`)
  if (ctx.signal) o.signal = ctx.signal;
  // Stryker disable next-line ConditionalExpression: equivalent (→ true): an undefined onRetry is none to the client (`opts.onRetry?.(e)`)
  if (ctx.onRetry) o.onRetry = ctx.onRetry;
  // Stryker disable next-line ConditionalExpression: equivalent (→ true): the client tests `opts.credentialsSince !== undefined`
  if (ctx.credentialsSince !== undefined) o.credentialsSince = ctx.credentialsSince;
  return o;
};

/** A load as an outcome: never rejects. */
export const settle = (p: Promise<Loaded>): Promise<Outcome> =>
  p.then(
    (loaded) => ({ ok: true, loaded }),
    (error: unknown) => ({ ok: false, error }),
  );

/** Most secrets one tag-discovery page asks for (BatchGetSecretValue's MaxResults limit). */
const DISCOVERY_PAGE = 20;
/** A service that keeps answering empty pages with a NextToken must not keep a search going forever. */
const DISCOVERY_MAX_PAGES = 1000;

export function createLoader(upstream: Upstream, opts: LoaderOptions): Loader & Discovery {
  const clock = opts.clock ?? systemClock;
  const crossRegion = opts.crossRegion ?? true;
  /** Clock time until which batch calls are off, per service and role (the role may lack the permission). */
  const batchesOffUntil = new Map<string, number>();
  // Stryker disable next-line StringLiteral: equivalent ('' → another constant): the key stays distinct per service and role; no role ARN equals it
  const offKey = (service: Service, r: ItemRequest) => `${service}\u0000${r.roleArn ?? ''}`;
  /** Values in hand for exactly these request objects (prefetch), taken by their next load. */
  const inHand = new WeakMap<ItemRequest, Loaded>();
  const take = (r: ItemRequest): Loaded | undefined => {
    const l = inHand.get(r);
    // Stryker disable next-line ConditionalExpression: equivalent: deleting a request not in the WeakMap is a no-op
    if (l !== undefined) inHand.delete(r);
    return l;
  };

  /** The Region a read goes to when not the configured one: the one its ARN names, if cross-Region reads are on. */
  const regionOf = (r: ItemRequest) => {
    const named = crossRegion ? arnRegion(r) : undefined;
    return named === upstream.region ? undefined : named;
  };
  const clientOf = (r: ItemRequest): AwsJsonClient =>
    upstream.client(r.service, { roleArn: r.roleArn, region: regionOf(r) });
  /** Requests that may share one batch call: same service, decryption flag, role and Region. */
  const groupOf = (r: ItemRequest) =>
    // Stryker disable next-line ConditionalExpression,StringLiteral: equivalent (service → true, the constants): keys stay distinct per group (a secret's `ssm:undefined` too)
    `${r.service === 'ssm' ? `ssm:${r.withDecryption}` : 'secretsmanager'}\u0000${r.roleArn ?? ''}\u0000${regionOf(r) ?? ''}`;

  /** Groups requests that may share one batch call, in arrival order. */
  const groups = (rs: readonly ItemRequest[]): Array<{ service: Service; indexes: number[] }> => {
    const out = new Map<string, { service: Service; indexes: number[] }>();
    rs.forEach((r, i) => {
      const k = groupOf(r);
      let g = out.get(k);
      if (!g) {
        g = { service: r.service, indexes: [] };
        out.set(k, g);
      }
      g.indexes.push(i);
    });
    return [...out.values()];
  };

  const single = async (r: ItemRequest, ctx?: LoadContext): Promise<Loaded> => {
    const held = take(r);
    if (held !== undefined) return held;
    const call = callOptions(ctx);
    const client = clientOf(r);
    if (r.service === 'ssm') {
      const p = await getParameter(
        client,
        {
          name: r.name,
          // Stryker disable next-line ConditionalExpression: equivalent (→ true): an undefined version is no selector to getParameter (`!== undefined`)
          ...(r.version !== undefined ? { version: r.version } : {}),
          // Stryker disable next-line ConditionalExpression: equivalent (→ true): an undefined label is no selector to getParameter (`!== undefined`)
          ...(r.label !== undefined ? { label: r.label } : {}),
          withDecryption: r.withDecryption,
        },
        call,
      );
      return loadedParameter(p);
    }
    const s = await getSecretValue(
      client,
      {
        secretId: r.secretId,
        // Stryker disable next-line ConditionalExpression: equivalent (→ true): getSecretValue sends VersionId only when not undefined
        ...(r.versionId !== undefined ? { versionId: r.versionId } : {}),
        // Stryker disable next-line ConditionalExpression: equivalent (→ true): getSecretValue sends VersionStage only when not undefined
        ...(r.versionStage !== undefined ? { versionStage: r.versionStage } : {}),
      },
      call,
    );
    return loadedSecret(s);
  };

  /** One batch call for 2..LIMIT requests of one group; ids the answer does not name go as single calls. */
  const batchCall = async (
    service: Service,
    rs: readonly ItemRequest[],
    ctx: LoadContext | undefined,
  ): Promise<Outcome[]> => {
    const ids = rs.map(batchId);
    const unique = [...new Set(ids)];
    // One group: every request has the first one's role and Region.
    const client = clientOf(rs[0]!);
    let found: (id: string) => Outcome | undefined;
    try {
      if (service === 'ssm') {
        const withDecryption =
          // Stryker disable next-line ConditionalExpression: equivalent: in the ssm branch every request of the group is a parameter; the test only narrows the type
          rs[0]!.service === 'ssm' && rs[0]!.withDecryption;
        const out = await getParameters(client, unique, withDecryption, callOptions(ctx));
        const invalid = new Set(out.InvalidParameters);
        found = (id) => {
          const p = out.Parameters.find((x) => answers('ssm', x, id));
          if (p) return { ok: true, loaded: loadedParameter(p) };
          // What GetParameter answers for a name that does not exist.
          if (invalid.has(id))
            return { ok: false, error: new AwsCallError('ParameterNotFound', '', 'aws', 400) };
          return undefined;
        };
      } else {
        const out = await batchGetSecretValue(client, unique, callOptions(ctx));
        found = (id) => {
          // Stryker disable next-line StringLiteral: equivalent: answers() tests only `service === 'ssm'`; any other string is the secret branch
          const s = out.SecretValues.find((x) => answers('secretsmanager', x, id));
          if (s) return { ok: true, loaded: loadedSecret(s) };
          const e = out.Errors.find((x) => x.SecretId === id);
          if (!e) return undefined;
          const code = e.ErrorCode ?? 'UnknownError';
          return { ok: false, error: new AwsCallError(code, e.Message ?? '', 'aws', 400) };
        };
      }
    } catch (e) {
      if (!(e instanceof AwsCallError)) throw e;
      if (e.kind !== 'aws' && e.httpStatus !== 501) {
        // Throttling, 5xx, timeouts, resets, garbage: the batch call already had its retries, and single
        // calls to a failing service would only multiply the load. Everyone gets what they would have got.
        return rs.map(() => ({ ok: false, error: e }));
      }
      // Refused as a whole (the role lacks the batch permission, the endpoint lacks the operation):
      // single calls answer these, and batches rest for a while.
      batchesOffUntil.set(offKey(service, rs[0]!), clock.now() + BATCH_BACKOFF_MS);
      opts.log.info('batch call failed; using single calls for a while', {
        service,
        code: e.code,
        minutes: BATCH_BACKOFF_MS / 60000,
      });
      return Promise.all(rs.map((r) => settle(single(r, ctx))));
    }
    // Ids the answer does not name (nothing matched, a partial ARN it spelled otherwise): ask singly.
    return Promise.all(rs.map((r, i) => found(ids[i]!) ?? settle(single(r, ctx))));
  };

  const many = async (all: readonly ItemRequest[], ctx?: LoadContext): Promise<Outcome[]> => {
    // Stryker disable next-line ArrayDeclaration: equivalent: every index below all.length is assigned before it is returned
    const out = new Array<Outcome>(all.length);
    // Values in hand answer at once; the rest go upstream.
    const indexes: number[] = [];
    all.forEach((r, i) => {
      const held = take(r);
      if (held !== undefined) out[i] = { ok: true, loaded: held };
      else indexes.push(i);
    });
    const rs = indexes.map((i) => all[i]!);
    // Stryker disable next-line ArrayDeclaration: equivalent: Promise.all passes a non-promise element through; `out` is what is returned
    const calls: Array<Promise<void>> = [];
    for (const g of groups(rs)) {
      const limit = BATCH_LIMIT[g.service];
      for (let i = 0; i < g.indexes.length; i += limit) {
        const chunk = g.indexes.slice(i, i + limit);
        const requests = chunk.map((j) => rs[j]!);
        const run =
          clock.now() < (batchesOffUntil.get(offKey(g.service, requests[0]!)) ?? 0)
            ? Promise.all(requests.map((r) => settle(single(r, ctx))))
            : batchCall(g.service, requests, ctx);
        calls.push(
          run.then((results) => {
            results.forEach((o, k) => {
              out[indexes[chunk[k]!]!] = o;
            });
          }),
        );
      }
    }
    await Promise.all(calls);
    return out;
  };

  const path = async (p: PathRequest, ctx?: LoadContext): Promise<PathListing> => {
    const all: WireParameter[] = [];
    let nextToken: string | undefined;
    // A path names no Region: the configured one.
    const client = upstream.client('ssm', { roleArn: p.roleArn });
    let pages = 0;
    // The answer's bytes so far (its frame, each item and the commas between): like a batch answer, at
    // most what pscache accepts from AWS in one answer, however many pages brought it.
    const head = '{"NextToken":null,"Parameters":[';
    const tail = '],"ResultMetadata":{}}';
    let bytes = head.length + tail.length;
    do {
      // A service that keeps answering empty pages with a NextToken must not keep a listing going forever.
      if (++pages > PATH_MAX_PAGES) {
        throw new AwsCallError(
          'MalformedResponse',
          `GetParametersByPath answered ${PATH_MAX_PAGES} pages without an end`,
          'malformed',
        );
      }
      const page = await getParametersByPath(
        client,
        {
          path: p.path,
          recursive: p.recursive,
          withDecryption: p.withDecryption,
          maxResults: 10,
          // Stryker disable next-line ConditionalExpression: equivalent (→ true): getParametersByPath sends NextToken only when not undefined
          ...(nextToken !== undefined ? { nextToken } : {}),
        },
        callOptions(ctx),
      );
      for (const x of page.Parameters) {
        bytes += Buffer.byteLength(JSON.stringify(parameterShape(x))) + (all.length > 0 ? 1 : 0);
        all.push(x);
      }
      ctx?.onProgress?.();
      // Stop paging at once: the rest would only be thrown away, and each page costs quota.
      if (all.length > PATH_ITEM_LIMIT) throw new PathTooLargeError(p.path, p.recursive);
      if (bytes > MAX_RESPONSE_BYTES) {
        // Refused, and cached as such for the TTL, as a path of too many parameters is.
        const e = new PathTooLargeError(p.path, p.recursive);
        e.message = `path ${p.path} holds more than ${MAX_RESPONSE_BYTES} bytes of parameters, more than a path answer may hold (as a batch answer); narrow the path${p.recursive ? ' or drop recursive=true' : ''}`;
        throw e;
      }
      nextToken = page.NextToken;
    } while (nextToken !== undefined);
    const body = Buffer.from(
      JSON.stringify({ NextToken: null, Parameters: all.map(parameterShape), ResultMetadata: {} }),
    );
    // Each item also stands for a single read of its name, when the answer provably names it: a plain
    // name under the path asked for, without a selector.
    const items = all
      .filter((x) => x.Selector === undefined && x.Name.startsWith(p.path))
      .map((x) => ({
        request: {
          service: 'ssm' as const,
          name: x.Name,
          withDecryption: p.withDecryption,
          ...(p.roleArn !== undefined ? { roleArn: p.roleArn } : {}),
        },
        loaded: loadedParameter(x),
      }));
    return { body, items };
  };

  async function* secretsTagged(key: string, roleArn: string | undefined, want: () => number) {
    const client = upstream.client('secretsmanager', { roleArn });
    let nextToken: string | undefined;
    for (let pages = 0; pages < DISCOVERY_MAX_PAGES; pages++) {
      const wanted = Math.min(DISCOVERY_PAGE, want());
      if (wanted <= 0) return;
      const page = await batchGetSecretValueByFilters(client, [{ Key: 'tag-key', Values: [key] }], {
        maxResults: wanted,
        nextToken,
      });
      const found: Discovered[] = [];
      for (const s of page.SecretValues) {
        // Cached under its name, as a plain read of it would be; a value without a name stands for nothing.
        if (s.Name === undefined) continue;
        const request: ItemRequest = {
          service: 'secretsmanager',
          secretId: s.Name,
          // Stryker disable next-line ConditionalExpression: equivalent (→ true): `roleArn: undefined` is no role everywhere (keys use `roleArn ?? ''`, clients take it as is)
          ...(roleArn !== undefined ? { roleArn } : {}),
        };
        found.push({ request, loaded: loadedSecret(s) });
      }
      yield { found, errors: page.Errors.length };
      nextToken = page.NextToken;
      if (nextToken === undefined) return;
    }
  }

  const batcher =
    opts.batchWindowMs > 0
      ? new Batcher(opts.batchWindowMs, { one: single, many }, clock, groupOf)
      : undefined;

  return {
    one(r, ctx) {
      // A load with its own attempt count or credentials rule cannot share a batch call.
      if (
        batcher &&
        batchable(r) &&
        !inHand.has(r) &&
        ctx?.attempts === undefined &&
        ctx?.credentialsSince === undefined
      ) {
        return batcher.load(r, ctx);
      }
      return single(r, ctx);
    },
    many,
    path,
    secretsTagged,
    primed(items) {
      for (const { request, loaded } of items) inHand.set(request, loaded);
      return items.map((x) => x.request);
    },
  };
}
