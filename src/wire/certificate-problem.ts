// Says what is wrong with a certificate file the TLS library refuses with a bare decoding error (BoringSSL, in the
// compiled binary, reports an X.509 v1 certificate carrying extensions as "ASN.1 ... DECODE_ERROR"). Only what can
// be told for certain from the DER is reported; anything else is left to the library's own message.

const BEGIN = "-----BEGIN CERTIFICATE-----";
const PEM_BLOCK = /-----BEGIN CERTIFICATE-----([\s\S]*?)-----END CERTIFICATE-----/g;
const SEQUENCE = 0x30;
const VERSION_TAG = 0xa0; // [0] EXPLICIT Version, absent for v1
const EXTENSIONS_TAG = 0xa3; // [3] EXPLICIT Extensions, allowed in v3 only (RFC 5280, 4.1.2.9)

/**
 * What is wrong with the PEM certificate(s) in `pem`, as words that follow the file name ("is X.509 version 1 but
 * carries extensions; ..."), or null when nothing is found (the file may still be refused by the library).
 */
export function certificateProblem(pem: Buffer | string): string | null {
  const bytes = typeof pem === "string" ? Buffer.from(pem) : pem;
  const text = bytes.toString("latin1");
  if (!text.includes(BEGIN)) {
    if (bytes[0] === SEQUENCE && bytes.length > 64)
      return "is DER, not PEM (convert it: openssl x509 -inform der -in FILE -out FILE.pem)";
    return `holds no PEM certificate (no "${BEGIN}" line)`;
  }
  const blocks = [...text.matchAll(PEM_BLOCK)];
  for (const [i, block] of blocks.entries()) {
    const version = versionWithExtensions(Buffer.from(block[1]!.replace(/\s+/g, ""), "base64"));
    if (version === null) continue;
    const which = blocks.length > 1 ? `certificate ${i + 1} of ${blocks.length} in it` : "its certificate";
    return (
      `is not valid: ${which} is X.509 version ${version} but carries extensions, which only version 3 may ` +
      "carry; reissue it as a version 3 certificate (OpenSSL makes version 3 when given extensions, e.g. " +
      "openssl x509 -req -extfile)"
    );
  }
  return null;
}

/** The X.509 version (1 or 2) of a DER certificate that carries extensions anyway; null otherwise or if unreadable. */
function versionWithExtensions(der: Buffer): number | null {
  const cert = readTlv(der, 0);
  if (!cert || cert.tag !== SEQUENCE) return null;
  const tbs = readTlv(der, cert.bodyStart);
  if (!tbs || tbs.tag !== SEQUENCE) return null;
  let version = 1;
  let extensions = false;
  for (let at = tbs.bodyStart; at < tbs.end; ) {
    const field = readTlv(der, at);
    if (!field || field.end > tbs.end) return null;
    if (at === tbs.bodyStart && field.tag === VERSION_TAG) {
      const v = readTlv(der, field.bodyStart);
      if (v?.tag !== 0x02 || v.end - v.bodyStart !== 1) return null;
      version = der[v.bodyStart]! + 1;
    }
    if (field.tag === EXTENSIONS_TAG) extensions = true;
    at = field.end;
  }
  return extensions && version < 3 ? version : null;
}

/** One DER tag-length-value at `at`: its tag, where its contents start and where it ends; null if malformed. */
function readTlv(der: Buffer, at: number): { tag: number; bodyStart: number; end: number } | null {
  if (at + 2 > der.length) return null;
  const tag = der[at]!;
  let len = der[at + 1]!;
  let bodyStart = at + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4 || bodyStart + n > der.length) return null;
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + der[bodyStart + i]!;
    bodyStart += n;
  }
  const end = bodyStart + len;
  return end <= der.length ? { tag, bodyStart, end } : null;
}
