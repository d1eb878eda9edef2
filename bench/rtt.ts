// Loopback round trip over the Berth wire layer: one client connection, strict request/response ping-pong against
// an echo handler (src/wire/server.ts listen, role "client", no secret). Together with fdatasync this is the floor
// under a 1-in-flight commit (one round to the followers plus one fdatasync on the critical path).
// Usage: bun bench/rtt.ts
import { connect } from "../src/wire/client.ts";
import { listen } from "../src/wire/server.ts";

export async function measureWireRtt(opts: { samples: number; warmup?: number }): Promise<{
  p50Ms: number;
  p99Ms: number;
}> {
  const listener = await listen({
    host: "127.0.0.1",
    port: 0,
    secret: null,
    role: "client",
    name: "echo",
    onConnection(conn) {
      conn.serve({ request: (_method, params) => params });
    },
  });
  const { conn } = await connect({
    host: "127.0.0.1",
    port: listener.address.port,
    secret: null,
    role: "client",
    name: "rtt-bench",
  });
  const payload = { seq: 0, data: new Uint8Array(64) };
  const times: number[] = [];
  try {
    for (let i = 0; i < (opts.warmup ?? 200); i++) await conn.request("echo", payload);
    for (let i = 0; i < opts.samples; i++) {
      payload.seq = i;
      const t0 = performance.now();
      await conn.request("echo", payload);
      times.push(performance.now() - t0);
    }
  } finally {
    conn.close();
    await listener.close();
  }
  times.sort((a, b) => a - b);
  const at = (q: number) => times[Math.min(times.length - 1, Math.floor(q * times.length))] ?? 0;
  return { p50Ms: at(0.5), p99Ms: at(0.99) };
}

if (import.meta.main) {
  const r = await measureWireRtt({ samples: 5000 });
  console.log(`wire round trip on loopback: p50 ${r.p50Ms.toFixed(3)} ms, p99 ${r.p99Ms.toFixed(3)} ms`);
}
