# DRIMbox production image. Build: docker build -t drimbox .
# Run:   docker run -v /etc/drimbox:/etc/drimbox:ro -v drimbox-data:/var/lib/drimbox \
#          -p 443:8443 -p 9443:9443 -p 2575:2575 drimbox serve --config /etc/drimbox/config.json
# The config file names the certificates (mounted read-only) and dataDir=/var/lib/drimbox.

FROM node:20-bookworm-slim AS build
WORKDIR /app
# better-sqlite3 builds from source (no prebuilt download)
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
COPY scripts ./scripts
RUN npm ci --no-fund --no-audit
COPY . .
RUN npm run build && npm prune --omit=dev

FROM node:20-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
RUN groupadd --system drimbox && useradd --system --gid drimbox --home /var/lib/drimbox drimbox \
 && mkdir -p /var/lib/drimbox && chown drimbox:drimbox /var/lib/drimbox
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/viewer/dist ./viewer/dist
COPY --from=build /app/bin ./bin
COPY --from=build /app/package.json ./
USER drimbox
VOLUME ["/var/lib/drimbox"]
EXPOSE 8443 9443 2575
# loopback probe of the box's own listener (its certificate names the public host, not 127.0.0.1)
HEALTHCHECK --interval=30s --timeout=5s CMD node -e "require('https').get({host:'127.0.0.1',port:8443,path:'/healthz',rejectUnauthorized:false},r=>process.exit(r.statusCode===200?0:1)).on('error',()=>process.exit(1))"
ENTRYPOINT ["node", "bin/drimbox.js"]
CMD ["serve", "--config", "/etc/drimbox/config.json"]
