// Makes a standalone layer's pscache.v8cache (scripts/layer.mjs runs it with that layer's node): starts the
// bundle as Lambda would, against a stand-in Extensions API here, and writes V8's cache once the daemon is up.
//
//   <layer node> --random-seed=1 scripts/layer-code-cache.cjs DIR OUT
//
// DIR holds pscache.cjs and start.cjs as in the layer. The cache holds the bytecode of everything compiled
// until the daemon is up: the INIT path to the first event/next, and the daemon built right after it;
// nothing a request runs. --random-seed fixes V8's string
// hash seed, which otherwise changes the cache's bytes from run to run; V8 leaves that flag out of the
// flag hash it checks, so the cache still fits a node started without it. On a badly overloaded machine a
// few bytes can still differ (timing-dependent state V8 records): scripts/layer.mjs keeps a cache that two
// runs agree on.
'use strict';
const { writeFileSync } = require('node:fs');
const { createServer } = require('node:http');
const { join } = require('node:path');

const [dir, out] = process.argv.slice(2);
if (!dir || !out) {
  process.stderr.write('usage: node --random-seed=1 layer-code-cache.cjs DIR OUT\n');
  process.exit(2);
}
const start = require(join(dir, 'start.cjs'));
const TIMEOUT_MS = 20_000;
/** The listener binds its other addresses this long after the first, at the latest (src/server/listener.ts). */
const LATE_BIND_MS = 100;
const BASE = '/2020-01-01/extension';
const ID = '00000000-0000-4000-8000-000000000000';

const timer = setTimeout(() => {
  process.stderr.write('layer-code-cache: no event/next within 20 s\n');
  process.exit(1);
}, TIMEOUT_MS);
timer.unref();

let compiled;
const api = createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    if (req.method === 'POST' && req.url === `${BASE}/register`) {
      res.writeHead(200, { 'Content-Type': 'application/json', 'Lambda-Extension-Identifier': ID });
      res.end('{"functionName":"pscache-code-cache","functionVersion":"$LATEST","handler":"index.handler"}');
    } else if (req.method === 'GET' && req.url === `${BASE}/event/next`) {
      // INIT is over. The daemon is built once this request was sent (src/lambda/lifecycle.ts), and the
      // listener binds [::1] by a 100 ms timer set then: the cache is made after both, so that it holds
      // the whole start. Timers fire in the order they expire, so that code is in every cache, whatever
      // the machine's load (racing it, a loaded build cached it and an idle one did not: the zips differed).
      setTimeout(() => {
        writeFileSync(out, start.cacheFile(compiled.source, compiled.script.createCachedData()));
        res.writeHead(200, { 'Content-Type': 'application/json' });
        res.end('{"eventType":"SHUTDOWN","shutdownReason":"spindown","deadlineMs":0}');
      }, LATE_BIND_MS + 50);
    } else {
      res.writeHead(404).end();
    }
  });
});

/** A port that was free a moment ago, for the daemon (which refuses port 0). */
function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
    s.once('error', reject);
  });
}

api.listen(0, '127.0.0.1', async () => {
  const port = await freePort();
  // The environment Lambda gives an extension (fixed values: the cache must not depend on the builder's).
  process.env = {
    AWS_LAMBDA_RUNTIME_API: `127.0.0.1:${api.address().port}`,
    AWS_REGION: 'us-east-1',
    AWS_DEFAULT_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'AKIAPSCACHECODECACHE',
    AWS_SECRET_ACCESS_KEY: 'code-cache-secret-access-key',
    AWS_SESSION_TOKEN: 'code-cache-session-token',
    AWS_LAMBDA_FUNCTION_NAME: 'pscache-code-cache',
    AWS_LAMBDA_FUNCTION_MEMORY_SIZE: '128',
    AWS_LAMBDA_FUNCTION_VERSION: '$LATEST',
    AWS_LAMBDA_INITIALIZATION_TYPE: 'on-demand',
    PARAMETERS_SECRETS_EXTENSION_HTTP_PORT: String(port),
  };
  process.argv = [process.execPath, join(dir, 'start.cjs'), 'serve', '--lambda-extension-name', 'pscache'];
  // Named as in Lambda: the name is in the cache, and a temporary directory's would change its bytes.
  compiled = start.compile(dir, { useCache: false, name: '/opt/pscache/pscache.cjs' });
  start.run(compiled);
});
