// Throwaway PKI for TLS tests, made with the openssl CLI (Debian ships it): a CA, a node certificate valid for
// 127.0.0.1..9 and localhost (server and client use, so members also present it to each other), a client
// certificate, and a second CA with its own node certificate to play a stranger.
import { execFileSync } from "node:child_process";
import { createPrivateKey, sign } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface TestCerts {
  dir: string;
  caCert: string;
  caKey: string;
  nodeCert: string;
  nodeKey: string;
  clientCert: string;
  clientKey: string;
  /** Signed by another CA: a certificate the cluster must not trust. */
  otherCaCert: string;
  otherNodeCert: string;
  otherNodeKey: string;
  cleanup(): void;
}

function openssl(args: string[], cwd: string): void {
  try {
    execFileSync("openssl", args, { cwd, stdio: ["ignore", "pipe", "pipe"] });
  } catch (e) {
    const err = e as { stderr?: Buffer; message: string };
    throw new Error(`openssl ${args.join(" ")} failed: ${err.stderr?.toString() || err.message}`);
  }
}

/** Fails clearly when openssl is missing (scripts/setup.sh environments have it). */
export function haveOpenssl(): boolean {
  try {
    execFileSync("openssl", ["version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

const SANS = [...Array.from({ length: 9 }, (_, i) => `IP:127.0.0.${i + 1}`), "DNS:localhost"].join(",");

function makeCa(dir: string, name: string): void {
  openssl(
    [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-keyout",
      `${name}.key`,
      "-out",
      `${name}.crt`,
      "-days",
      "2",
      "-subj",
      `/CN=${name}`,
      "-addext",
      "basicConstraints=critical,CA:TRUE",
      "-addext",
      "keyUsage=critical,keyCertSign,cRLSign",
    ],
    dir,
  );
}

function makeLeaf(dir: string, ca: string, name: string, extensions: string): void {
  openssl(
    [
      "req",
      "-new",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-keyout",
      `${name}.key`,
      "-out",
      `${name}.csr`,
      "-subj",
      `/CN=${name}`,
    ],
    dir,
  );
  writeFileSync(join(dir, `${name}.ext`), extensions);
  openssl(
    [
      "x509",
      "-req",
      "-in",
      `${name}.csr`,
      "-CA",
      `${ca}.crt`,
      "-CAkey",
      `${ca}.key`,
      "-CAcreateserial",
      "-out",
      `${name}.crt`,
      "-days",
      "2",
      "-extfile",
      `${name}.ext`,
    ],
    dir,
  );
}

export function makeTestCerts(): TestCerts {
  const dir = mkdtempSync(join(tmpdir(), "berth-certs-"));
  const nodeExt =
    "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n" +
    `extendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=${SANS}\n`;
  const clientExt =
    "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n" +
    "extendedKeyUsage=clientAuth\n";
  makeCa(dir, "ca");
  makeLeaf(dir, "ca", "node", nodeExt);
  makeLeaf(dir, "ca", "client", clientExt);
  makeCa(dir, "other-ca");
  makeLeaf(dir, "other-ca", "other-node", nodeExt);
  const p = (f: string) => join(dir, f);
  return {
    dir,
    caCert: p("ca.crt"),
    caKey: p("ca.key"),
    nodeCert: p("node.crt"),
    nodeKey: p("node.key"),
    clientCert: p("client.crt"),
    clientKey: p("client.key"),
    otherCaCert: p("other-ca.crt"),
    otherNodeCert: p("other-node.crt"),
    otherNodeKey: p("other-node.key"),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/**
 * Writes to `out` a copy of the certificate `certFile` that is X.509 version 1 yet keeps its extensions, signed
 * again by `caKeyFile`: what an old or home-made signing tool produces. OpenSSL 3's CLI always writes version 3
 * when it adds extensions, so the version field is cut out of the DER here.
 */
export function writeV1CertificateWithExtensions(certFile: string, caKeyFile: string, out: string): void {
  const der = Buffer.from(readFileSync(certFile, "utf8").replace(/-----[^-]+-----|\s+/g, ""), "base64");
  const cert = tlv(der, 0);
  const tbs = tlv(der, cert.bodyStart);
  const sigAlg = tlv(der, tbs.end);
  const version = tlv(der, tbs.bodyStart);
  if (version.tag !== 0xa0) throw new Error(`${certFile} has no version field to remove`);
  const v1Tbs = derEncode(0x30, der.subarray(version.end, tbs.end));
  const signature = sign("sha256", v1Tbs, createPrivateKey(readFileSync(caKeyFile)));
  const v1 = derEncode(
    0x30,
    Buffer.concat([
      v1Tbs,
      der.subarray(tbs.end, sigAlg.end),
      derEncode(0x03, Buffer.concat([Buffer.from([0]), signature])),
    ]),
  );
  const b64 = v1
    .toString("base64")
    .match(/.{1,64}/g)!
    .join("\n");
  writeFileSync(out, `-----BEGIN CERTIFICATE-----\n${b64}\n-----END CERTIFICATE-----\n`);
}

function tlv(der: Buffer, at: number): { tag: number; bodyStart: number; end: number } {
  let len = der[at + 1]!;
  let bodyStart = at + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + der[bodyStart + i]!;
    bodyStart += n;
  }
  return { tag: der[at]!, bodyStart, end: bodyStart + len };
}

function derEncode(tag: number, body: Buffer): Buffer {
  const n = body.length;
  const len: number[] = [];
  if (n < 0x80) len.push(n);
  else {
    for (let x = n; x > 0; x >>= 8) len.unshift(x & 0xff);
    len.unshift(0x80 | len.length);
  }
  return Buffer.concat([Buffer.from([tag, ...len]), body]);
}
