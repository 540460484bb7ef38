# syntax=docker/dockerfile:1
# Build:  docker build -t dynamorm-sidecar .
# Run:    docker run --network host -e BACKEND=aws -e AWS_REGION=eu-west-1 dynamorm-sidecar
# The sidecar binds 127.0.0.1 by default: in an ECS task or a Kubernetes pod the app container shares that
# loopback. To publish the port instead, set HOST=0.0.0.0 and AUTH_TOKEN (required off loopback).

# --- build: compile TypeScript with the full toolchain ---
FROM node:24-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
RUN npm run build

# --- deps: production dependencies only (dynalite's LevelDB binding ships prebuilt) ---
FROM node:24-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund

# --- runtime ---
FROM node:24-slim
# NODE_COMPILE_CACHE: Node keeps the modules' compiled code there, so a boot skips compiling them (README,
# Performance). One run of the CLI at build fills it; modules that run did not load are added at the first boot.
ENV NODE_ENV=production \
    HOST=127.0.0.1 \
    PORT=8787 \
    SCHEMAS_DIR=/app/schemas \
    LOG_LEVEL=info \
    NODE_COMPILE_CACHE=/app/.cache/node-compile
WORKDIR /app
COPY --from=deps --chown=node:node /app/node_modules ./node_modules
COPY --from=build --chown=node:node /app/dist ./dist
COPY --chown=node:node package.json ./
COPY --chown=node:node schemas ./schemas
RUN node dist/cli.js --print-openapi > /dev/null && chown -R node:node /app/.cache
USER node
EXPOSE 8787
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||8787)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
STOPSIGNAL SIGTERM
CMD ["node", "dist/cli.js"]
