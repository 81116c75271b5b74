# syntax=docker/dockerfile:1
#
# coffer-gateway container image.
#
#   docker build -t coffer-gateway:0.1.0 .
#   docker run --rm --read-only --tmpfs /tmp -p 8080:8080 -p 9090:9090 \
#     -v "$PWD/config.yaml:/etc/coffer-gateway/config.yaml:ro" coffer-gateway:0.1.0
#
# Stages:
#   prod    - production dependencies only (`npm ci --omit=dev`, no install scripts): what the runtime gets.
#   build   - prod + a two-package toolchain (docker/toolchain: TypeScript and Node's types, pinned by
#             their own lockfile at the versions of the project's) compiling src/ into dist/src. No dev
#             dependency of the project is installed (no test tools, no helm, no Node download): the
#             build installs ~71 MB instead of ~350 MB.
#   runtime - distroless Node 24: no shell, no package manager, non-root, only dist/src + node_modules.
#
# The runtime never runs npm and never uses the `node` npm package (a devDependency that pins Node for
# npm scripts): the base image provides Node 24 at /nodejs/bin/node.
#
# Base images: release builds pass both by digest (docs/development/release.md resolves them):
#   --build-arg NODE_BUILD_IMAGE=node:24-bookworm-slim@sha256:… --build-arg RUNTIME_IMAGE=gcr.io/distroless/nodejs24-debian12:nonroot@sha256:…

ARG NODE_BUILD_IMAGE=node:24-bookworm-slim
# Distroless Node 24 (Debian 12), tag `nonroot` = uid/gid 65532. No shell, so `kubectl exec -- sh` does
# not work; use `kubectl debug --image=busybox --target=coffer-gateway` for an ephemeral debug shell.
# Alternative when a shell is wanted at runtime: `node:24-bookworm-slim` with `USER 1000:1000` (the
# image's `node` user) - every other line below stays the same except ENTRYPOINT's node path
# (/usr/local/bin/node).
ARG RUNTIME_IMAGE=gcr.io/distroless/nodejs24-debian12:nonroot

# ------------------------------------------------------------------------------------------------
FROM ${NODE_BUILD_IMAGE} AS prod
WORKDIR /src
ENV npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false
COPY package.json package-lock.json ./
# Production dependencies only. --ignore-scripts: no production dependency has an install script, and
# `prepare` (tsc) must not run here (TypeScript is a devDependency and is not installed).
RUN --mount=type=cache,target=/root/.npm npm ci --omit=dev --ignore-scripts && npm cache clean --force

# ------------------------------------------------------------------------------------------------
FROM prod AS build
# The compiler and Node's types, from their own lockfile (integrity-checked like the rest).
COPY docker/toolchain/package.json docker/toolchain/package-lock.json /toolchain/
RUN --mount=type=cache,target=/root/.npm cd /toolchain && npm ci --ignore-scripts
# src/ only (tsconfig.image.json): it imports production dependencies only, whose type declarations
# the prod stage installed.
COPY tsconfig.json tsconfig.build.json tsconfig.image.json ./
COPY src ./src
RUN /toolchain/node_modules/.bin/tsc -p tsconfig.image.json && test -f dist/src/cli.js

# ------------------------------------------------------------------------------------------------
FROM ${RUNTIME_IMAGE} AS runtime

ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="coffer-gateway" \
      org.opencontainers.image.description="Encrypting gateway for the Tencent Cloud Data Coffer (CDCS) API in front of an S3-compatible store" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/example/coffer-gateway" \
      org.opencontainers.image.base.name="gcr.io/distroless/nodejs24-debian12:nonroot"

WORKDIR /app
# Files are owned by root and only readable by the runtime user: the process cannot modify its own code.
COPY --from=prod  --chown=0:0 /src/package.json ./package.json
COPY --from=prod  --chown=0:0 /src/node_modules ./node_modules
COPY --from=build --chown=0:0 /src/dist/src ./dist/src

# Read-only root filesystem: nothing is written under /app. The only writable paths are mounted volumes
# (Kubernetes: an emptyDir on /tmp). HOME and TMPDIR point there so libraries that want a cache or a
# temp file never touch the image. The keyring (kms.type local) comes from a mounted Secret.
ENV NODE_ENV=production \
    HOME=/tmp \
    TMPDIR=/tmp \
    COFFER_CONFIG=/etc/coffer-gateway/config.yaml

# Numeric user, so Kubernetes `runAsNonRoot: true` can verify it without resolving names.
USER 65532:65532

# Data plane (server.port) and admin listener: /healthz, /readyz, /metrics (server.adminPort).
EXPOSE 8080 9090

# No HEALTHCHECK: Kubernetes ignores Docker HEALTHCHECK and uses the probes (/healthz, /readyz on the
# admin port) defined by the Helm chart; a distroless image also has no curl/wget to run one with.

# Exec form, node as PID 1, no npm or shell wrapper: SIGTERM reaches Node directly and the gateway
# drains (readiness false at once, in-flight requests get server.shutdownGraceMs). Node as PID 1 has no
# default signal dispositions, which is fine because the gateway installs SIGTERM/SIGINT handlers; it
# spawns no children, so no zombie reaping (tini) is needed. In Kubernetes, use `shareProcessNamespace`
# only with care: then PID 1 is the pause container and signals still reach node directly.
# --max-semi-space-size=4: a 1 MiB young generation, collected often, returns the memory of streamed
# Buffers promptly (peak RSS of a 1 GiB part ~210 → ~138 MB, and faster; README "Memory").
ENTRYPOINT ["/nodejs/bin/node", "--enable-source-maps", "--max-semi-space-size=4", "dist/src/cli.js"]
CMD ["serve"]
