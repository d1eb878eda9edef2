// A certificate file the TLS library refuses with a bare decoding error is refused by Berth saying what is wrong:
// an X.509 version 1 certificate carrying extensions (the compiled binary's BoringSSL calls it an ASN.1
// DECODE_ERROR), a DER file, a file without a certificate. Pure checks, then the real binary (node and CLI flags).
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { certificateProblem } from "../src/wire/certificate-problem.ts";
import { makeTestCerts, type TestCerts, writeV1CertificateWithExtensions } from "./support/certs.ts";
import { berth, freePort } from "./support/cluster.ts";

const V1_WITH_EXTENSIONS =
  /is not valid: .*X\.509 version 1 but carries extensions.*reissue it as a version 3/;

describe("certificate problems", () => {
  let certs: TestCerts;
  let v1: string;

  beforeAll(() => {
    certs = makeTestCerts();
    v1 = join(certs.dir, "v1-node.crt");
    writeV1CertificateWithExtensions(certs.nodeCert, certs.caKey, v1);
  });
  afterAll(() => certs?.cleanup());

  it("the test certificate is what the review found: version 1 with extensions, signed by the CA", () => {
    const text = execFileSync("openssl", ["x509", "-in", v1, "-noout", "-text"], { encoding: "utf8" });
    expect(text).toMatch(/Version: 1 \(0x0\)/);
    expect(text).toMatch(/X509v3 Subject Alternative Name/);
    // Its signature is good: only the version is wrong.
    execFileSync("openssl", ["verify", "-CAfile", certs.caCert, v1], { stdio: "ignore" });
  });

  it("names a version 1 certificate with extensions, alone or in a bundle; good certificates pass", () => {
    expect(certificateProblem(readFileSync(certs.nodeCert))).toBeNull();
    expect(certificateProblem(readFileSync(certs.caCert))).toBeNull();
    expect(certificateProblem(readFileSync(v1))).toMatch(
      /^is not valid: its certificate is X\.509 version 1/,
    );
    const bundle = Buffer.concat([readFileSync(certs.caCert), readFileSync(v1)]);
    expect(certificateProblem(bundle)).toMatch(/certificate 2 of 2 in it is X\.509 version 1/);
    const der = execFileSync("openssl", ["x509", "-in", certs.nodeCert, "-outform", "der"]);
    expect(certificateProblem(der)).toMatch(/^is DER, not PEM/);
    expect(certificateProblem(readFileSync(certs.nodeKey))).toMatch(/holds no PEM certificate/);
  });

  it("berth node refuses it at start naming the flag and the problem (exit 2)", async () => {
    const run = async (args: string[]) =>
      berth(
        [
          "node",
          "--name=v1",
          `--data-dir=${join(certs.dir, "data")}`,
          `--peer-addr=127.0.0.1:${await freePort()}`,
          `--client-addr=127.0.0.1:${await freePort()}`,
          "--http-addr=off",
          ...args,
        ],
        { timeoutMs: 10_000 },
      );
    const asCert = await run([`--cert-file=${v1}`, `--key-file=${certs.nodeKey}`]);
    expect(asCert.code).toBe(2);
    expect(asCert.stderr).toContain(`--cert-file ${v1} is not valid`);
    expect(asCert.stderr).toMatch(V1_WITH_EXTENSIONS);
    const asPeerCa = await run([
      `--peer-cert-file=${certs.nodeCert}`,
      `--peer-key-file=${certs.nodeKey}`,
      `--peer-trusted-ca-file=${v1}`,
    ]);
    expect(asPeerCa.code).toBe(2);
    expect(asPeerCa.stderr).toContain(`--peer-trusted-ca-file ${v1} is not valid`);
  });

  it("the berth CLI refuses it as --cert-file or --ca-file before connecting (exit 2)", async () => {
    const endpoint = `127.0.0.1:${await freePort()}`;
    const asClientCert = await berth([
      "kv",
      "get",
      "/x",
      `--endpoint=${endpoint}`,
      `--ca-file=${certs.caCert}`,
      `--cert-file=${v1}`,
      `--key-file=${certs.nodeKey}`,
    ]);
    expect(asClientCert.code).toBe(2);
    expect(asClientCert.stderr).toMatch(V1_WITH_EXTENSIONS);
    const bundle = join(certs.dir, "bundle.crt");
    writeFileSync(bundle, Buffer.concat([readFileSync(certs.caCert), readFileSync(v1)]));
    const asCa = await berth(["kv", "get", "/x", `--endpoint=${endpoint}`, `--ca-file=${bundle}`]);
    expect(asCa.code).toBe(2);
    expect(asCa.stderr).toMatch(/--ca-file .* certificate 2 of 2 in it is X\.509 version 1/);
  });
});
