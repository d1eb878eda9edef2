// A listener that cannot open names the flag that chose its address, the address and the cause in words
// ("--http-addr 127.0.0.1:2379: address already in use"), whatever the runtime's own message (Bun: "Failed to
// listen at 127.0.0.1").
const CAUSES: Record<string, string> = {
  EADDRINUSE: "address already in use",
  EADDRNOTAVAIL: "address not available (no interface of this machine has it)",
  EACCES: "permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE)",
  EPERM: "permission denied",
  ENOTFOUND: "host name not found",
  EAI_AGAIN: "host name lookup failed",
};

export class ListenError extends Error {}

export function listenError(flag: string, address: string, err: unknown): ListenError {
  const e = err as { code?: unknown; message?: unknown; cause?: { code?: unknown; message?: unknown } };
  const code = String(e?.cause?.code ?? e?.code ?? "");
  const cause = CAUSES[code] ?? String(e?.cause?.message ?? e?.message ?? err);
  return new ListenError(`${flag} ${address}: ${cause}`);
}

/** Runs `open`, turning its failure into a ListenError naming `flag` and `address`. */
export async function listening<T>(flag: string, address: string, open: () => Promise<T>): Promise<T> {
  try {
    return await open();
  } catch (err) {
    throw listenError(flag, address, err);
  }
}
