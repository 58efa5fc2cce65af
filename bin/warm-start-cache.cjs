#!/usr/bin/env node
// Fills `pscache serve`'s start cache (serve.v8cache, docs/sidecars.md, Start-up) by starting it once on a
// free loopback port and stopping it: for container images, run at build time as the user the image runs
// as (the Dockerfile does), so that every container starts from it, with a read-only root file system too.
// Needs no AWS account: nothing is read upstream. Exits non-zero, saying why, if no cache was written.
'use strict';
const { spawn } = require('node:child_process');
const { statSync } = require('node:fs');
const { get } = require('node:http');
const { createServer } = require('node:net');

const TIMEOUT_MS = 20_000;

function fail(message) {
  process.stderr.write(`warm-start-cache: ${message}\n`);
  process.exit(1);
}

/** The cache file bin/pscache.cjs reads and writes (see privateDir() there). */
function cacheFile() {
  const { env } = process;
  const base = env.XDG_CACHE_HOME?.startsWith('/')
    ? env.XDG_CACHE_HOME
    : env.HOME?.startsWith('/')
      ? `${env.HOME}/.cache`
      : undefined;
  return base === undefined ? undefined : `${base}/pscache/compile-cache/serve.v8cache`;
}

const mtime = (file) => {
  try {
    return file === undefined ? undefined : statSync(file).mtimeMs;
  } catch {
    return undefined;
  }
};

const ping = (port) =>
  new Promise((resolve) => {
    const req = get({ host: '127.0.0.1', port, path: '/ping', timeout: 1000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => req.destroy());
  });

const probe = createServer().listen(0, '127.0.0.1', () => {
  const { port } = probe.address();
  probe.close(async () => {
    const file = cacheFile();
    const before = mtime(file);
    // Node's own variables pass (NODE_OPTIONS above all: V8 keys its cache by its flags, so the image must
    // make it with the flags it runs with); pscache's and AWS's do not.
    const nodeEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith('NODE_')));
    const child = spawn(process.execPath, [`${__dirname}/pscache.cjs`, 'serve'], {
      env: {
        ...nodeEnv,
        PATH: process.env.PATH ?? '',
        ...(process.env.HOME ? { HOME: process.env.HOME } : {}),
        ...(process.env.XDG_CACHE_HOME ? { XDG_CACHE_HOME: process.env.XDG_CACHE_HOME } : {}),
        // A start like any other, with nothing to fetch: placeholders, never used upstream.
        AWS_REGION: 'us-east-1',
        AWS_ACCESS_KEY_ID: 'AKIAWARMSTARTCACHE00',
        AWS_SECRET_ACCESS_KEY: 'warm-start-cache-placeholder',
        PARAMETERS_SECRETS_EXTENSION_TOKEN: `warm-start-cache-${process.pid}-${Date.now()}`,
        PARAMETERS_SECRETS_EXTENSION_HTTP_PORT: String(port),
        // Its configuration line says whether it started from the cache (code_cache=...).
        PARAMETERS_SECRETS_EXTENSION_LOG_LEVEL: 'debug',
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let log = '';
    child.stderr.on('data', (d) => {
      log += d;
    });
    const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
    const deadline = Date.now() + TIMEOUT_MS;
    let up = false;
    while (!up && Date.now() < deadline) {
      up = await ping(port);
      if (!up) await new Promise((r) => setTimeout(r, 20));
    }
    // It writes the cache a moment after the start, or as it exits (bin/pscache.cjs).
    child.kill('SIGTERM');
    const { code, signal } = await exited;
    const problems = log
      .split('\n')
      .filter((l) => / (WARN|ERROR) /.test(l) && !/no AWS credentials/.test(l))
      .join('\n');
    if (!up) fail(`pscache serve did not answer /ping within ${TIMEOUT_MS / 1000} s\n${problems}`);
    if (code !== 0) fail(`pscache serve exited with ${code ?? signal}\n${problems}`);
    // Started from a cache that fits (it was there already), or wrote one now.
    const status = / code_cache=([a-z-]+)/.exec(log)?.[1];
    const after = mtime(file);
    if (status !== 'used' && (after === undefined || after === before)) {
      fail(
        `no start cache was written (code_cache=${status ?? 'none'}): set XDG_CACHE_HOME (or HOME) to a directory of this user that nobody else may enter, and keep it writable here`,
      );
    }
  });
});
