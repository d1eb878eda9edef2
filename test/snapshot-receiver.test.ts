import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { SNAP_BEGIN, SnapshotReceiver } from "../src/raft/snapshot-transfer.ts";
import type { Message } from "../src/raft/types.ts";
import type { Connection } from "../src/wire/connection.ts";

describe("SnapshotReceiver", () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "berth-snaprecv-"));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const header: Message = {
    type: "snap",
    from: "n1",
    to: "n2",
    term: 2,
    snapshot: {
      meta: { index: 10, term: 2, confState: { voters: ["n1", "n2"], learners: [] } },
      data: new Uint8Array(0),
    },
  } as Message;

  it("abandons a transfer whose connection closed while its file was being opened", async () => {
    const logs: string[] = [];
    const receiver = new SnapshotReceiver(dir, "n2", (l) => logs.push(l));
    await receiver.start();
    const conn = { closed: false } as unknown as Connection;
    const begun = receiver.handle(conn, "n1", SNAP_BEGIN, { id: "t1", message: header, size: 100 });
    // The sender goes away before the receiver has registered the transfer.
    (conn as { closed: boolean }).closed = true;
    receiver.connectionClosed(conn);
    await expect(begun).rejects.toThrow(/connection closed/);
    expect(readdirSync(dir)).toEqual([]);
    expect(logs.join("\n")).toMatch(/snapshot transfer from n1 abandoned: connection closed/);
  });
});
