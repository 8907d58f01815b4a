# DRIMbox production image (docs/operations.md, "Container").
#   docker build -t drimbox .
#   docker run -v /etc/drimbox:/etc/drimbox:ro -v drimbox-data:/var/lib/drimbox \
#     -p 443:8443 -p 9443:9443 -p 2575:2575 -p 11112:11112 drimbox
# The config file (mounted read-only with the certificates it names) sets every port and
# dataDir=/var/lib/drimbox; a listener's host must be 0.0.0.0 to be reached from outside the container.
# The ports below are the defaults of docs/operations.md: pass --build-arg to match another config.

# current Node LTS (26 "Lithium"), pinned by major; Debian 13 (trixie)
ARG NODE_IMAGE=node:26-trixie-slim

# better-sqlite3 is compiled against this Node; the postinstall script patches undici
FROM ${NODE_IMAGE} AS toolchain
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
COPY scripts ./scripts

FROM toolchain AS build
RUN npm ci --no-fund --no-audit
COPY . .
RUN npm run build

# what the box runs with: no compiler, no TypeScript, no Vite, no test tools
FROM toolchain AS runtime-deps
RUN npm ci --omit=dev --no-fund --no-audit

FROM ${NODE_IMAGE}
ARG USER_PORT=8443
ARG PEER_PORT=9443
ARG HL7_PORT=2575
ARG IOCM_PORT=11112
ENV NODE_ENV=production
WORKDIR /app
RUN groupadd --system drimbox && useradd --system --gid drimbox --home-dir /var/lib/drimbox --shell /usr/sbin/nologin drimbox \
 && mkdir -p /var/lib/drimbox /var/lib/drimbox-cache && chown drimbox:drimbox /var/lib/drimbox /var/lib/drimbox-cache \
 && chmod 0700 /var/lib/drimbox /var/lib/drimbox-cache
COPY --from=runtime-deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/viewer/dist ./viewer/dist
COPY --from=build /app/bin ./bin
COPY --from=build /app/package.json ./
USER drimbox
# dataDir, and the study cache folder (cache.dir) that several instances share
VOLUME ["/var/lib/drimbox", "/var/lib/drimbox-cache"]
# user (viewer, contextual call, admin), peer (mutual TLS), MLLP from the RIS, IOCM from the PACS
EXPOSE ${USER_PORT} ${PEER_PORT} ${HL7_PORT} ${IOCM_PORT}
# the box's own /healthz on the user port its config names (drimbox healthcheck: exit 0 only on 200)
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
  CMD ["node", "bin/drimbox.js", "healthcheck", "--config", "/etc/drimbox/config.json"]
ENTRYPOINT ["node", "bin/drimbox.js"]
CMD ["serve", "--config", "/etc/drimbox/config.json"]
