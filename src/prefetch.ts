// Prefetch: what PARAMETERS_SECRETS_EXTENSION_PREFETCH and --config ask to have cached before the first
// read (named items, every secret carrying a tag key, every parameter under a path), read through the
// cache's getMany like any batch read, a page at a time, at most cache_buffer_ratio of CACHE_SIZE items
// and of MAX_CACHE_SIZE bytes, after a random wait of up to max_jitter_seconds so that a fleet started
// together does not call upstream in step.
import { AwsCallError } from './aws/types.ts';
import type { ItemCache } from './cache/index.ts';
import { type Clock, systemClock } from './clock.ts';
import type { PrefetchItem, PrefetchTag } from './config/settings.ts';
import { cacheKey, type ItemRequest, itemName, type Loaded } from './items.ts';
import type { Discovered, Discovery, Loader } from './loader/index.ts';
import type { Logger } from './log.ts';

export interface PrefetchPlan {
  /** Named items (`ssm:`, `secretsmanager:`, prefetch.secrets) and paths (`ssm-path:`). */
  items: readonly PrefetchItem[];
  /** prefetch.filter_tags. */
  tags: readonly PrefetchTag[];
  /** Most items prefetching fills: cache_buffer_ratio of CACHE_SIZE (prefetchBudget). */
  budget: number;
  /**
   * Most bytes of answers prefetching fills: cache_buffer_ratio of MAX_CACHE_SIZE (prefetchBudget). Tag
   * keys match by prefix, so whoever can create secrets pscache may read decides how much a tag finds.
   */
  budgetBytes: number;
  /** Waits a random 0..this many milliseconds first. */
  maxJitterMs: number;
}

export interface PrefetchDeps {
  cache: Pick<ItemCache, 'getMany' | 'reserve'>;
  loader: Pick<Loader, 'path'> & Discovery;
  log: Logger;
  clock?: Clock;
  /** [0, 1), for the jitter. */
  random?: () => number;
}

export interface PrefetchResult {
  /** Items now cached (or already fresh). */
  fetched: number;
  /** Items whose read failed, plus tag searches and paths that stopped on an error. */
  failed: number;
  /** Items left out at the buffer limit. */
  skipped: number;
  /** Bytes of the answers it cached. */
  bytes: number;
  /** How long it waited first (ms). */
  waitedMs: number;
}

/**
 * The provider's rule: cache_buffer_ratio of the cache, at least one item; nothing when the cache is off.
 * The same ratio of the cache's bytes (MAX_CACHE_SIZE) bounds what prefetching fills.
 */
export function prefetchBudget(cacheEnabled: boolean, cacheSize: number, ratio: number): number {
  return cacheEnabled ? Math.max(1, Math.floor(cacheSize * ratio)) : 0;
}

/** Named items are read this many at a time (one BatchGetSecretValue call's worth). */
const NAMED_SLICE = 20;

const codeOf = (e: unknown) => (e instanceof AwsCallError ? e.code : e instanceof Error ? e.name : 'Error');

function requestOf(i: PrefetchItem): ItemRequest {
  const role = i.roleArn !== undefined ? { roleArn: i.roleArn } : {};
  // Parameters are fetched decrypted; a non-SecureString is then cached for both withDecryption values.
  return i.service === 'ssm'
    ? { service: 'ssm', name: i.id, withDecryption: true, ...role }
    : { service: 'secretsmanager', secretId: i.id, ...role };
}

/** Runs the plan. Never throws: failures are logged (names at DEBUG only) and counted. */
export async function prefetch(plan: PrefetchPlan, deps: PrefetchDeps): Promise<PrefetchResult> {
  const { cache, loader, log } = deps;
  const result: PrefetchResult = { fetched: 0, failed: 0, skipped: 0, bytes: 0, waitedMs: 0 };
  if (plan.items.length === 0 && plan.tags.length === 0) return result;
  if (plan.budget <= 0) {
    log.info('prefetch skipped: the cache is off');
    return result;
  }
  const clock = deps.clock ?? systemClock;
  if (plan.maxJitterMs > 0) {
    result.waitedMs = Math.floor((deps.random ?? Math.random)() * plan.maxJitterMs);
    await new Promise<void>((resolve) => clock.setTimeout(resolve, result.waitedMs));
  }
  let left = plan.budget;
  /** Set once an item did not fit the byte budget: nothing more is fetched. */
  let full = false;
  const room = () => (full || result.bytes >= plan.budgetBytes ? 0 : Math.max(0, left));
  /** Keys asked for already: a secret both named and tagged counts once. */
  const seen = new Set<string>();

  /**
   * Reads `requests` through the cache; values already in hand (a discovery page, a listing) were read
   * upstream after load number `readAt` was given out, and are judged as of then: a NotFound or a newer
   * answer that landed meanwhile is not undone by them.
   */
  const read = async (requests: ItemRequest[], readAt?: number) => {
    if (requests.length === 0) return;
    const results = await cache.getMany(requests, readAt !== undefined ? { readAt } : {});
    results.forEach((res, i) => {
      if (res.ok) {
        result.fetched++;
        result.bytes += res.answer.body.length;
        return;
      }
      result.failed++;
      log.debug('prefetch failed', { name: itemName(requests[i]!), code: codeOf(res.error) });
    });
  };
  /**
   * Takes what the budgets allow of `found`, skipping what is asked for already: items while any are left,
   * and bytes while the values in hand (tags, paths) fit; the rest counts as skipped.
   */
  const within = <T extends { request: ItemRequest; loaded?: Loaded }>(found: readonly T[]): T[] => {
    const fresh = found.filter((f) => {
      const key = cacheKey(f.request);
      if (seen.has(key)) return false;
      seen.add(key);
      return true;
    });
    const taken: T[] = [];
    let bytes = result.bytes;
    for (const f of fresh) {
      const size = f.loaded?.body.length ?? 0;
      if (room() - taken.length <= 0 || bytes + size > plan.budgetBytes) {
        if (f.loaded !== undefined) full = true;
        break;
      }
      taken.push(f);
      bytes += size;
    }
    result.skipped += fresh.length - taken.length;
    left -= taken.length;
    return taken;
  };

  // Named items in slices: their sizes are known only once read, and reading stops at the byte budget.
  const named = plan.items.filter((i) => !i.path).map((i) => ({ request: requestOf(i) }));
  for (let i = 0; i < named.length; i += NAMED_SLICE) {
    if (room() <= 0) {
      result.skipped += named.length - i;
      break;
    }
    await read(within(named.slice(i, i + NAMED_SLICE)).map((x) => x.request));
  }

  for (const tag of plan.tags) {
    if (room() <= 0) break;
    try {
      let some = false;
      const pages = loader.secretsTagged(tag.key, tag.roleArn, room)[Symbol.asyncIterator]();
      for (;;) {
        // The page is asked for now: what it brings is judged as a load started now.
        const mark = cache.reserve();
        try {
          const next = await pages.next();
          if (next.done) break;
          const page = next.value;
          result.failed += page.errors;
          some ||= page.found.length > 0 || page.errors > 0;
          await read(loader.primed(within(page.found)), mark.readAt);
        } finally {
          mark.release();
        }
        if (room() <= 0) {
          await pages.return?.();
          break;
        }
      }
      if (!some) log.debug('prefetch: no secret carries the tag', { key: tag.key });
    } catch (e) {
      result.failed++;
      log.warn('prefetch: a tag search failed', { code: codeOf(e) });
      log.debug('prefetch: the tag search that failed', { key: tag.key });
    }
  }

  for (const p of plan.items.filter((i) => i.path)) {
    if (room() <= 0) break;
    const mark = cache.reserve();
    try {
      const listing = await loader.path({
        path: p.id,
        recursive: true,
        withDecryption: true,
        ...(p.roleArn !== undefined ? { roleArn: p.roleArn } : {}),
      });
      await read(loader.primed(within<Discovered>(listing.items)), mark.readAt);
    } catch (e) {
      result.failed++;
      log.warn('prefetch: a path listing failed', { code: codeOf(e) });
      log.debug('prefetch: the path that failed', { path: p.id });
    } finally {
      mark.release();
    }
  }

  if (room() <= 0 && result.skipped > 0) {
    log.warn('prefetch stopped at the cache buffer limit', {
      limit: plan.budget,
      limit_bytes: plan.budgetBytes,
      bytes: result.bytes,
      skipped: result.skipped,
    });
  }
  if (result.failed > 0) log.warn('prefetch incomplete', { fetched: result.fetched, failed: result.failed });
  else log.info('prefetch done', { items: result.fetched });
  return result;
}
