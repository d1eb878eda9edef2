// The etcd user a TLS client certificate names (etcd's --client-cert-auth mapping): its subject's CN, for a
// certificate the listener verified. Node's TLSSocket and Bun's socket answer the same two questions.
export interface CertifiedSocket {
  authorized?: boolean;
  getPeerCertificate?(): { subject?: { CN?: unknown } } | null | undefined;
}

export function verifiedCertName(socket: unknown): string | null {
  const s = socket as CertifiedSocket | null | undefined;
  if (!s?.authorized || typeof s.getPeerCertificate !== "function") return null;
  const cn = s.getPeerCertificate()?.subject?.CN;
  return typeof cn === "string" && cn !== "" ? cn : null;
}
