# pscache as a sidecar container: docker build -t pscache . (deploy/README.md shows Compose, ECS and EKS).
#
# Base: node:24-alpine, a supported LTS line. pscache is bundled JavaScript with no native modules, so musl
# makes no difference to it, and the Alpine image is smaller than node:24-slim, with fewer packages to patch.

FROM node:24-alpine AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
RUN npm run build
# The bundle holds everything but the AWS SDK's default credential chain (profile, web identity for EKS
# IRSA, IMDS for EC2), which it loads from node_modules when neither the environment nor a container
# credentials endpoint has credentials. Install that package alone, at the version the lock file pins.
RUN npm install --prefix /deps --omit=dev --no-save --no-package-lock --no-audit --no-fund \
      "$(node deploy/sdk-chain-spec.mjs)"

FROM node:24-alpine
# The final image runs no package manager: drop them (smaller, and fewer files for scanners to flag).
RUN rm -rf /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/corepack /opt/yarn-* \
      /usr/local/bin/npm /usr/local/bin/npx /usr/local/bin/corepack /usr/local/bin/yarn /usr/local/bin/yarnpkg \
 && addgroup -S -g 10001 pscache \
 && adduser -S -D -H -u 10001 -G pscache -s /sbin/nologin pscache
WORKDIR /app
COPY --from=build /src/package.json ./
COPY --from=build /src/bin ./bin
COPY --from=build /src/dist ./dist
COPY --from=build /deps/node_modules ./node_modules
ENV NODE_ENV=production
# The start cache (bin/pscache.cjs keeps V8's cache of a whole `serve` start, and Node's compile cache, in
# $XDG_CACHE_HOME/pscache/compile-cache, a directory the user owns and nobody else may enter), made here by
# one start as the user pscache runs as, so that every container starts from it: the first start too, and
# with a read-only root file system.
ENV XDG_CACHE_HOME=/app/.cache
RUN mkdir -m 0700 /app/.cache && chown 10001:10001 /app/.cache
# Numeric, so Kubernetes' runAsNonRoot can check it without reading /etc/passwd.
USER 10001:10001
RUN node /app/bin/warm-start-cache.cjs
# pscache listens on 127.0.0.1 and ::1 only, so nothing is exposed: the application reaches it by sharing
# the container's network namespace (Compose network_mode, an ECS task, a Kubernetes pod). The health
# check runs inside the container, where loopback reaches it; node stands in for curl, which the image lacks.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["node", "-e", "require('http').get({host:'127.0.0.1',port:process.env.PARAMETERS_SECRETS_EXTENSION_HTTP_PORT||2773,path:'/ping',timeout:2000},r=>process.exit(r.statusCode===200?0:1)).on('error',()=>process.exit(1)).on('timeout',()=>process.exit(1))"]
# Exec form: node is PID 1 and gets SIGTERM itself; pscache handles it (finishes what is in flight, exits
# 0), so no init process is needed. It spawns no children, so there are no zombies to reap. The bin, not
# dist/pscache.cjs: it is what starts from the cache.
ENTRYPOINT ["node", "/app/bin/pscache.cjs", "serve"]
