// How the CLI and the Lambda lifecycle get the daemon's modules (the cache, the AWS clients, the HTTP
// server: two thirds of the bundle). Here statically, for the npm bundle (`serve`, `dev`): they compile
// with the rest in one pass, as a sidecar starts them at once anyway. The Lambda layers' bundle takes
// daemon-loader-lazy.ts instead (scripts/layer.mjs), which loads them after the first event/next.
import * as daemon from './daemon.ts';

/** `eager`: loaded with the CLI; `lazy`: when first asked for. Logged at DEBUG once registered in Lambda. */
export const DAEMON_LOADING: 'eager' | 'lazy' = 'eager';

export const loadDaemon = async (): Promise<typeof daemon> => daemon;
