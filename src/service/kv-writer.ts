// What the unit and machine services need from the node's key/value service (src/node/kv-service.ts): a
// linearizable read point and writes routed to the leader. A port, so those services live with the scheduler
// without importing the node.
import type { KvResult, KvWriteRequest } from "../client/protocol.ts";

export interface KvWriter {
  /** Waits until this replica has applied everything committed before the call. */
  sync(): Promise<void>;
  /** Any node accepts a write; it answers once this member applied it. */
  write(req: KvWriteRequest): Promise<KvResult>;
}
