// The handshake that opens every Berth connection, before any envelope (see connection.ts) flows.
//
//   both sides   → hello {magic: "berth", protocol, version, role, name, nonce (32 random bytes), auth, proofScheme}
//                  (`auth`: this side holds the cluster secret; acceptors holding it require it of connectors)
//   if either side holds the secret, both sides → {proof: HMAC-SHA256(secret, "berth-auth-2" || side || role ||
//                  connector name || acceptor name || connector nonce || acceptor nonce)}, side being "accept" or
//                  "connect", each verified with timingSafeEqual. The side keeps a proof from being reflected back
//                  at its author; the names keep a member's proof from vouching for another name (an impostor on
//                  a down member's address relaying a live member's handshake).
//   acceptor     → {ok: true} once it accepted the connector (the connector waits for it)
// Authentication is mutual: a connector holding the secret refuses an acceptor that does not prove it (one that
// says "no auth" is refused, never trusted), and an acceptor holding it refuses a connector that does not.
// Either side may instead send the error frame [3, "error", {code, message}] and close: codes "version_mismatch",
// "auth_failed", "wrong_role", "handshake_failed". Hello frames must keep this shape in every protocol version, so
// mismatched binaries can still tell each other apart.
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { PROTOCOL_VERSION, VERSION } from "../version.ts";
import { type ByteStream, ERROR_FRAME_METHOD } from "./connection.ts";
import {
  AuthError,
  HandshakeError,
  UnavailableError,
  VersionMismatchError,
  type WireError,
  WireTimeoutError,
} from "./errors.ts";
import { encodeFrame, FrameDecoder } from "./frame.ts";

export type Role = "peer" | "client";

export interface Hello {
  magic: "berth";
  protocol: number;
  version: string;
  role: Role;
  name: string;
  nonce: Uint8Array;
  auth: boolean;
  /** The proof this side computes (see the top of this file); absent from binaries whose proofs bound no names. */
  proofScheme?: number;
}

export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 5000;
/** Handshake frames are tiny; a larger one is not a Berth endpoint talking. */
const HANDSHAKE_MAX_FRAME = 64 * 1024;
const NONCE_BYTES = 32;
const LINGER_MS = 1000;
const PROOF_SCHEME = 2;

export interface HandshakeOptions {
  side: "accept" | "connect";
  /** accept: the role this address serves; connect: the role this side connects as. */
  role: Role;
  name: string;
  /** When set, this side proves it and requires the other side to prove it too (both sides). */
  secret: Buffer | null;
  timeoutMs: number;
  /** How the other end is named in messages ("host:port"). */
  label: string;
}

export interface HandshakeResult {
  hello: Hello;
  /** The decoder holding whatever arrived after the handshake, and frames it already decoded. */
  decoder: FrameDecoder;
  frames: unknown[];
}

/**
 * Runs the handshake on a fresh socket. On success the socket is paused (the caller wraps it in a Connection,
 * which resumes it); on failure an error frame was sent, the socket is closing, and the promise rejects with an
 * error whose `code` says why.
 */
export function handshake(socket: ByteStream, opts: HandshakeOptions): Promise<HandshakeResult> {
  return new Promise((resolve, reject) => {
    const decoder = new FrameDecoder(HANDSHAKE_MAX_FRAME);
    const myNonce = randomBytes(NONCE_BYTES);
    const mine: Hello = {
      magic: "berth",
      protocol: PROTOCOL_VERSION,
      version: VERSION,
      role: opts.role,
      name: opts.name,
      nonce: myNonce,
      auth: opts.secret !== null && opts.secret.length > 0,
      proofScheme: PROOF_SCHEME,
    };
    const useSecret = mine.auth ? opts.secret : null;
    let peer: Hello | null = null;
    let needProof = false;
    let proofOk = false;
    let settled = false;

    const cleanup = () => {
      clearTimeout(timer);
      socket.off("data", onData);
      socket.off("error", onError);
      socket.off("close", onClose);
    };
    const fail = (err: WireError, tell: boolean) => {
      if (settled) return;
      settled = true;
      cleanup();
      socket.on("error", () => {}); // late errors of a socket being dropped
      if (tell && !socket.destroyed) {
        try {
          socket.write(encodeFrame([3, ERROR_FRAME_METHOD, { code: err.code, message: err.message }]));
        } catch {
          // best effort
        }
      }
      if (!socket.destroyed) {
        socket.end();
        setTimeout(() => socket.destroy(), LINGER_MS).unref?.();
      }
      reject(err);
    };
    const succeed = (frames: unknown[]) => {
      if (settled) return;
      settled = true;
      cleanup();
      socket.pause();
      resolve({ hello: peer!, decoder, frames });
    };
    const send = (v: unknown) => {
      socket.write(encodeFrame(v));
    };

    const onFrame = (f: unknown, rest: unknown[]): void => {
      if (Array.isArray(f) && f[0] === 3 && f[1] === ERROR_FRAME_METHOD) {
        const e = (f[2] ?? {}) as { code?: unknown; message?: unknown };
        const code = typeof e.code === "string" ? e.code : "handshake_failed";
        const msg =
          opts.side === "connect"
            ? `${opts.label} refused the connection: ${String(e.message ?? code)}`
            : `${opts.label} gave up the handshake: ${String(e.message ?? code)}`;
        fail(
          code === "auth_failed"
            ? new AuthError(msg)
            : code === "version_mismatch"
              ? new VersionMismatchError(String(e.message ?? msg))
              : new HandshakeError(msg, code),
          false,
        );
        return;
      }
      if (!peer) {
        const err = checkHello(f, mine, opts);
        if (err) return fail(err, true);
        peer = f as Hello;
        // An acceptor holding the secret requires it; a connector holding it requires it back, whatever the
        // acceptor says: a process on a member's address that answers "no auth" must not get Raft traffic.
        needProof = opts.side === "accept" ? mine.auth : mine.auth || peer.auth;
        if (needProof && !useSecret)
          return fail(
            new AuthError(`${opts.label} requires the cluster secret, and none was configured here`),
            true,
          );
        if (needProof && !peer.auth)
          return fail(
            new AuthError(
              opts.side === "accept"
                ? `${opts.label} does not hold the cluster secret (is it a member of this cluster?)`
                : `the endpoint at ${opts.label} does not hold the cluster secret, so it cannot prove it is a ` +
                    "member (a stranger on a member's address?)",
            ),
            true,
          );
        if (needProof && peer.proofScheme !== PROOF_SCHEME)
          return fail(
            new AuthError(
              `${opts.label} runs a berth (${peer.version}) that proves the cluster secret the older, one-sided ` +
                "way; run the same berth binary on every member",
            ),
            true,
          );
        if (needProof) send({ proof: proof(useSecret!, opts.side, opts.role, ends(opts.side, mine, peer)) });
        else if (opts.side === "accept") {
          send({ ok: true });
          return succeed(rest);
        }
        return;
      }
      const m = f as { proof?: unknown; ok?: unknown } | null;
      if (needProof && !proofOk) {
        const got = m && typeof m === "object" ? m.proof : undefined;
        const other = opts.side === "accept" ? "connect" : "accept";
        const expected = proof(useSecret!, other, opts.role, ends(opts.side, mine, peer));
        if (
          !(got instanceof Uint8Array) ||
          got.length !== expected.length ||
          !timingSafeEqual(got, expected)
        ) {
          return fail(
            new AuthError(
              opts.side === "accept"
                ? `${opts.label} did not prove knowledge of the cluster secret (wrong secret?)`
                : `the node at ${opts.label} did not prove knowledge of the cluster secret (wrong secret?)`,
            ),
            true,
          );
        }
        proofOk = true;
        if (opts.side === "accept") {
          send({ ok: true });
          return succeed(rest);
        }
        return;
      }
      if (opts.side === "connect" && m && typeof m === "object" && m.ok === true) return succeed(rest);
      fail(new HandshakeError(`${opts.label} broke the handshake (unexpected message)`), true);
    };

    const onData = (chunk: Buffer) => {
      let frames: unknown[];
      try {
        frames = decoder.push(chunk);
      } catch (err) {
        // A TLS record (alert or handshake, version 3.x) where a Berth frame should be: the other end wants TLS.
        const tlsRecord = (chunk[0] === 0x15 || chunk[0] === 0x16) && chunk[1] === 0x03;
        fail(
          new HandshakeError(
            tlsRecord
              ? `${opts.label} speaks TLS: connect with TLS (berth: --ca-file, and --cert-file/--key-file ` +
                  "if the node requires client certificates)"
              : `${opts.label} is not speaking the Berth protocol: ${(err as Error).message}`,
          ),
          true,
        );
        return;
      }
      for (let i = 0; i < frames.length && !settled; i++) onFrame(frames[i], frames.slice(i + 1));
    };
    const onError = (err: Error) => {
      fail(
        new UnavailableError(`connection to ${opts.label} failed during the handshake: ${err.message}`),
        false,
      );
    };
    const onClose = () => {
      fail(new UnavailableError(`${opts.label} closed the connection during the handshake`), false);
    };
    const timer = setTimeout(
      () =>
        fail(
          new WireTimeoutError(
            `the handshake with ${opts.label} did not complete within ${opts.timeoutMs} ms`,
          ),
          true,
        ),
      opts.timeoutMs,
    );

    socket.on("data", onData);
    socket.on("error", onError);
    socket.on("close", onClose);
    try {
      send(mine);
    } catch (err) {
      fail(new UnavailableError(`cannot write to ${opts.label}: ${(err as Error).message}`), false);
    }
  });
}

function checkHello(f: unknown, mine: Hello, opts: HandshakeOptions): WireError | null {
  const h = f as Partial<Hello> | null;
  if (!h || typeof h !== "object" || h.magic !== "berth")
    return new HandshakeError(`${opts.label} is not a Berth endpoint (no Berth hello)`);
  if (h.protocol !== PROTOCOL_VERSION) {
    return new VersionMismatchError(
      `protocol version mismatch: this node speaks protocol ${PROTOCOL_VERSION} (berth ${VERSION}), ` +
        `the peer speaks ${String(h.protocol)} (berth ${String(h.version)})`,
    );
  }
  if (
    typeof h.name !== "string" ||
    typeof h.version !== "string" ||
    (h.role !== "peer" && h.role !== "client")
  )
    return new HandshakeError(`${opts.label} sent a malformed hello`);
  if (
    !(h.nonce instanceof Uint8Array) ||
    h.nonce.length !== NONCE_BYTES ||
    Buffer.from(h.nonce).equals(mine.nonce)
  )
    return new HandshakeError(`${opts.label} sent an invalid nonce`);
  if (h.role !== mine.role) {
    return new HandshakeError(
      opts.side === "accept"
        ? `this address serves ${mine.role} connections, not ${h.role} connections (from ${opts.label})`
        : `${opts.label} serves ${h.role} connections, not ${mine.role} connections (wrong address?)`,
      "wrong_role",
    );
  }
  return null;
}

/** The two hellos as connector and acceptor, whichever side this is. */
function ends(side: "accept" | "connect", mine: Hello, peer: Hello): { connector: Hello; acceptor: Hello } {
  return side === "connect" ? { connector: mine, acceptor: peer } : { connector: peer, acceptor: mine };
}

/** What `side` sends to prove it knows the secret: bound to its side, the role, both names and both nonces. */
function proof(
  secret: Buffer,
  side: string,
  role: string,
  { connector, acceptor }: { connector: Hello; acceptor: Hello },
): Buffer {
  return createHmac("sha256", secret)
    .update("berth-auth-2")
    .update(side)
    .update(role)
    .update(lengthPrefixed(connector.name))
    .update(lengthPrefixed(acceptor.name))
    .update(connector.nonce)
    .update(acceptor.nonce)
    .digest();
}

/** A name with its length in front, so the boundary between the two names cannot move. */
function lengthPrefixed(s: string): Buffer {
  const bytes = Buffer.from(s, "utf8");
  const len = Buffer.alloc(4);
  len.writeUInt32BE(bytes.length);
  return Buffer.concat([len, bytes]);
}
