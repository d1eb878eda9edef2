// The etcd v2 HTTP API (see server.ts).
export { type HttpApi, startHttpApi } from "./server.ts";
export type { HttpDeps, HttpWatch } from "./types.ts";
