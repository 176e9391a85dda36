# A Lockstep party node. Build: docker build -t lockstep .
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# The local-stack servers are not needed in an image: production uses real Temporal, MongoDB and EVM nodes.
ENV LOCKSTEP_SKIP_PROVISION=1
RUN npm ci
COPY . .
RUN npm run build && npm prune --omit=dev

FROM node:20-bookworm-slim
WORKDIR /app
# The node's runtime as src/stack/party-processes.ts starts it (NODE_RUNTIME_FLAGS, NODE_RUNTIME_ENV): less resident memory, same CPU.
ENV NODE_ENV=production LOCKSTEP_SKIP_PROVISION=1 LOCKSTEP_LISTEN_HOST=0.0.0.0 MALLOC_ARENA_MAX=2 MALLOC_MMAP_THRESHOLD_=131072
COPY --from=build /app /app
USER node
ENTRYPOINT ["node", "--max-semi-space-size=4", "dist/src/cli/main.js"]
CMD ["--help"]
