// Password hashes for v2 auth users: scrypt from node:crypto (etcd uses bcrypt; the hashes never leave the
// cluster, so only the cost matters). Stored as "scrypt$N$r$p$salt$hash" (base64), so the cost can change later
// without breaking stored users.
import { createHash, randomBytes, scrypt, timingSafeEqual } from "node:crypto";

const N = 1 << 14;
const R = 8;
const P = 1;
const KEY_BYTES = 32;

function derive(password: string, salt: Buffer, n: number, r: number, p: number): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    scrypt(password, salt, KEY_BYTES, { N: n, r, p, maxmem: 256 * n * r }, (err, key) =>
      err ? reject(err) : resolve(key),
    ),
  );
}

export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await derive(password, salt, N, R, P);
  return `scrypt$${N}$${R}$${P}$${salt.toString("base64")}$${key.toString("base64")}`;
}

/**
 * Verified (hash, password) pairs: Basic auth sends the password with every request, and scrypt costs tens of
 * milliseconds by design. Keyed by the stored hash and a digest of the password, so a changed password (a new
 * hash) never matches an old entry, and the map holds no password.
 */
const verified = new Map<string, true>();
const MAX_VERIFIED = 1024;

export async function checkPassword(stored: string, password: string): Promise<boolean> {
  const cacheKey = `${stored}\0${createHash("sha256").update(password).digest("base64")}`;
  if (verified.has(cacheKey)) return true;
  const parts = stored.split("$");
  if (parts.length !== 6 || parts[0] !== "scrypt") return false;
  const [n, r, p] = [Number(parts[1]), Number(parts[2]), Number(parts[3])];
  if (![n, r, p].every((v) => Number.isInteger(v) && v > 0) || n > 1 << 20 || r > 32 || p > 16) return false;
  const want = Buffer.from(parts[5] as string, "base64");
  let got: Buffer;
  try {
    got = await derive(password, Buffer.from(parts[4] as string, "base64"), n, r, p);
  } catch {
    return false;
  }
  if (got.length !== want.length || !timingSafeEqual(got, want)) return false;
  if (verified.size >= MAX_VERIFIED) verified.delete(verified.keys().next().value as string);
  verified.set(cacheKey, true);
  return true;
}
