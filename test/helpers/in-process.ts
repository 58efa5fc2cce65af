// pscache's core in the test's own process, on the test's clock: the cache and the loader (batch window
// included) over real signed AWS calls to the emulator on a loopback port. No timer of the cache or the
// batch window fires until the test advances the clock, so which reads share a call is decided by the test,
// not by the scheduler; every call the loader makes is recorded as it is made.
import { type Emulator, type StoreFile, startEmulator } from '../../packages/emulator/index.ts';
import { waitLimitMs } from '../../src/aws/client.ts';
import { type AwsJsonClient, type CallOptions, createUpstream, type Upstream } from '../../src/aws/index.ts';
import { AwsCallError } from '../../src/aws/types.ts';
import { ItemCache } from '../../src/cache/index.ts';
import { loadConfig } from '../../src/config.ts';
import type { ItemRequest } from '../../src/items.ts';
import { createLoader } from '../../src/loader/index.ts';
import { createLogger } from '../../src/log.ts';
import { TEST_CREDENTIALS, TEST_TOKEN } from './daemon.ts';
import { FakeClock, settle } from './fake-time.ts';

/** One upstream call as the loader made it: the operation, the names or ids it asked for, and when. */
export interface MadeCall {
  operation: string;
  ids: string[];
  /** The test clock's time when it was made. */
  at: number;
}

/** What a read got: the body's text, or the error code (AwsCallError) or message. */
export type Got = { ok: true; body: string; source: string } | { ok: false; code: string };

/** The emulator as the cores of one test file share it, with a clock the test can stop. */
export interface FakeAws {
  emu: Emulator;
  /** Stops the emulator's clock (its rate limits then never refill), or lets it run again with undefined. */
  freeze(at: number | undefined): void;
}

export async function startFakeAws(store: StoreFile): Promise<FakeAws> {
  let frozenAt: number | undefined;
  const emu = await startEmulator({
    port: 0,
    store,
    credentials: [TEST_CREDENTIALS],
    clock: () => frozenAt ?? Date.now(),
  });
  return {
    emu,
    freeze(at) {
      frozenAt = at;
    },
  };
}

export interface Core {
  clock: FakeClock;
  cache: ItemCache;
  /** Upstream calls in the order the loader made them. */
  calls: MadeCall[];
  /** Resolves once every call made so far has been answered (background refreshes included). */
  idle(): Promise<void>;
  /** The daemon's log lines (INFO and up). */
  lines: string[];
  /** Starts a read now (synchronously: it has joined a load or the batch window when this returns). */
  read(r: ItemRequest): Promise<Got>;
  /** Closes its upstream sockets (the emulator is the caller's). */
  close(): void;
}

export interface CoreOptions {
  /** The batch window (PARAMETERS_SECRETS_EXTENSION_BATCH_WINDOW_MILLIS); 0 turns it off. */
  batchWindowMs: number;
  aws: FakeAws;
}

const idsOf = (input: Record<string, unknown>): string[] => {
  for (const k of ['Names', 'SecretIdList']) if (Array.isArray(input[k])) return input[k] as string[];
  for (const k of ['Name', 'SecretId', 'Path']) if (typeof input[k] === 'string') return [input[k] as string];
  return [];
};

export function startCore(opts: CoreOptions): Core {
  const { emu } = opts.aws;
  const config = loadConfig({
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: TEST_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: TEST_CREDENTIALS.secretAccessKey,
    AWS_ENDPOINT_URL: emu.url,
    PARAMETERS_SECRETS_EXTENSION_TOKEN: TEST_TOKEN,
  });
  const lines: string[] = [];
  const log = createLogger('info', 'text', (l) => lines.push(l));
  const real = createUpstream(config, log);
  const calls: MadeCall[] = [];
  const answered: Promise<unknown>[] = [];
  const recorded = new Map<AwsJsonClient, AwsJsonClient>();
  const record = (c: AwsJsonClient): AwsJsonClient => {
    let r = recorded.get(c);
    if (!r) {
      r = Object.create(c) as AwsJsonClient;
      r.call = <T>(operation: string, input: unknown, o?: CallOptions) => {
        calls.push({ operation, ids: idsOf(input as Record<string, unknown>), at: clock.now() });
        const p = c.call<T>(operation, input, o);
        answered.push(p.catch(() => {}));
        return p;
      };
      recorded.set(c, r);
    }
    return r;
  };
  const clock = new FakeClock();
  const upstream: Upstream = {
    ...real,
    region: real.region,
    ssm: record(real.ssm),
    secretsmanager: record(real.secretsmanager),
    client: (service, via) => record(real.client(service, via)),
  };
  const loader = createLoader(upstream, { batchWindowMs: opts.batchWindowMs, log, clock });
  const cache = new ItemCache({
    enabled: true,
    maxItems: 1000,
    maxBytes: 1 << 24,
    ttlMs: config.ttlMs,
    staleIfErrorMs: 0,
    loader,
    waitLimitMs: {
      ssm: waitLimitMs(config.timeoutMs.ssm),
      secretsmanager: waitLimitMs(config.timeoutMs.secretsmanager),
    },
    clock,
    jitter: () => 1,
  });
  return {
    clock,
    cache,
    calls,
    async idle() {
      // A call's answer may start another (a batch refused as a whole, then single calls).
      for (let done = 0; done < answered.length; ) {
        const upTo = answered.length;
        await Promise.all(answered.slice(done, upTo));
        done = upTo;
        await settle();
      }
    },
    lines,
    read(r) {
      const failed = (e: unknown): Got => ({
        ok: false,
        code: e instanceof AwsCallError ? e.code : String(e),
      });
      try {
        return Promise.resolve(cache.get(r)).then(
          (a): Got => ({ ok: true, body: a.body.toString(), source: a.source }),
          failed,
        );
      } catch (e) {
        return Promise.resolve(failed(e));
      }
    },
    close() {
      real.close();
    },
  };
}
