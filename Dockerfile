# tokenhot-batch: one image for the worker, the producer and the one-off commands.
FROM node:20-slim AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY workers ./workers
RUN npm ci --no-audit --no-fund && npm prune --omit=dev

FROM node:20-slim
ENV NODE_ENV=production TOKENHOT_OUT_DIR=/data/output
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY bin ./bin
COPY jobs ./jobs
# Outputs (images, sidecars, ledger) go to a volume that every worker shares. The folder is made
# here, owned by `node`, before VOLUME: a fresh named volume then starts out writable by the
# worker (a bind-mounted host folder keeps its own owner: see the README).
RUN mkdir -p /data/output && chown node:node /data/output
VOLUME ["/data/output"]
USER node
ENTRYPOINT ["node", "bin/tokenhot-batch.js"]
CMD ["--help"]
