// The Lambda layers' daemon-loader.ts (scripts/layer.mjs swaps it in): the daemon's modules load when the
// daemon is started, once the first event/next is on its way, not with the CLI. Loading them before it
// was ~5 % of the layer's INIT (docs/benchmarks.md, Fifth pass). Not in the npm bundle: a lazily loaded
// module compiles twice over (V8 preparses it with the bundle, then compiles it when it runs), ~3 ms of
// every `pscache serve` start, and Node's compile cache keeps only what compiles with the bundle.
import type * as daemon from './daemon.ts';

export const DAEMON_LOADING: 'eager' | 'lazy' = 'lazy';

export const loadDaemon = (): Promise<typeof daemon> => import('./daemon.ts');
