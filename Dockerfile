# Two stages: `build` compiles TypeScript, the chat page and the native better-sqlite3 addon
# with the same npm scripts the tests use, then prunes dev dependencies;
# `runtime` is a slim Node 20 image with only package.json, the pruned
# node_modules and dist/, running as the unprivileged `node` user.
#
# Nothing secret goes into the image: configuration (JWT_SECRET, DATABASE_URL,
# REDIS_URL, ...) comes from the environment at run time, see
# src/config/env.validation.ts and docker-compose.yml.
#
#   docker build -t realtime-backend .
#   docker run --rm -e JWT_SECRET=... -e DATABASE_URL=postgres://... realtime-backend node dist/src/database/migrate.js run
#   docker run --rm --stop-timeout 15 -p 3000:3000 -e JWT_SECRET=... -e DATABASE_URL=postgres://... -e MIGRATIONS_RUN=false realtime-backend
#
# `--stop-timeout 15`: docker's default of 10 s would kill the node as its own
# drain (SHUTDOWN_TIMEOUT_MS, 10 s) ends, before it has closed its connections.

ARG NODE_IMAGE=node:20-bookworm-slim

# ---------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /app

# better-sqlite3 falls back to compiling from source (node-gyp) when no
# prebuilt binary can be fetched.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*

# Dependencies first, so that this layer is cached until the lockfile changes.
# `npm ci` applies patches/ to node_modules (postinstall), so they come with it.
# The npm of the image (10) ignores package.json's allowScripts, which keeps
# swagger-ui-dist's analytics script from reporting the build; this does.
ENV SCARF_ANALYTICS=false
COPY package.json package-lock.json ./
COPY patches ./patches
RUN npm ci

COPY nest-cli.json tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY migrations ./migrations
# The chat page (web/) and the SDK it is built on (client/), bundled by Vite.
COPY client ./client
COPY web ./web
RUN npm run build \
 && npm prune --omit=dev \
 && npm cache clean --force

# ---------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production
WORKDIR /app

# The code stays owned by root (read-only for the app); only data/ (the
# default SQLITE_PATH, used when DATABASE_URL is unset) is writable. It is a
# volume, out of the container's layer; mount a named one there
# (docker run -v chat-data:/app/data) so that the embedded database outlives
# the container and its upgrades (an anonymous one goes with `--rm`).
RUN mkdir -p /app/data && chown node:node /app/data
VOLUME /app/data

COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist

USER node
EXPOSE 3000

# Slim images have no curl: ask Node itself. Liveness only (the process
# answers); readiness (/health/ready) is for the orchestrator. The service
# listens once its start-up migrations are applied (MIGRATIONS_RUN, on by
# default here), which may wait for another replica's, or build an index:
# the start period leaves them ten minutes before the container counts as
# unhealthy. Longer ones belong in a migration step of their own, as in
# docker-compose.yml.
HEALTHCHECK --interval=15s --timeout=5s --start-period=10m --retries=3 \
  CMD ["node", "dist/src/health/liveness-probe.js"]

# main.ts drains on SIGTERM (SHUTDOWN_TIMEOUT_MS), so run node directly as PID 1.
CMD ["node", "dist/src/main.js"]
