// The version string, fixed at bundle time by esbuild (`define`), or a dev marker when run from source.
declare const __PSCACHE_VERSION__: string | undefined;
export const VERSION: string = typeof __PSCACHE_VERSION__ === 'string' ? __PSCACHE_VERSION__ : '0.0.0-dev';
