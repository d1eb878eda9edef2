// The supervisor's keepalive finds the leader among the members (following a "not_leader" hint), proves the
// cluster secret, and asks the leader first the next time; members that cannot be reached or refuse are reported.
import { afterEach, describe, expect, it } from "vitest";
import { KEEPALIVE_METHOD, MachineKeepalive } from "../src/agent/machine-keepalive.ts";
import { type Listener, listen } from "../src/wire/server.ts";

const SECRET = "keepalive-test-secret-0123456789";

describe("the supervisor's keepalive", () => {
  const listeners: Listener[] = [];
  const asked: string[] = [];
  afterEach(async () => {
    for (const l of listeners.splice(0)) await l.close();
    asked.length = 0;
  });

  /** A fake member: answers keepalives when `leads()`, else refuses with the leader's name. */
  const member = async (name: string, leader: () => string) => {
    const l = await listen({
      host: "127.0.0.1",
      port: 0,
      secret: Buffer.from(SECRET),
      role: "peer",
      name,
      onConnection: (conn, hello) =>
        conn.serve({
          request: (method, params) => {
            asked.push(`${name}<-${hello.name}:${(params as { member: string }).member}`);
            if (method !== KEEPALIVE_METHOD) throw new Error("unexpected");
            if (leader() !== name)
              throw Object.assign(new Error(`${name} is not the leader`), {
                code: "not_leader",
                data: { leader: leader() },
              });
            return { leader: name };
          },
          notify: () => {},
        }),
    });
    listeners.push(l);
    return `127.0.0.1:${l.address.port}`;
  };

  it("follows the leader hint, then asks the leader first", async () => {
    let lead = "n3";
    const peers = { n2: await member("n2", () => lead), n3: await member("n3", () => lead) };
    const k = new MachineKeepalive(1000);
    k.setAccess({ member: "n1", peers, secret: SECRET, tls: null });
    await k.once(3000);
    expect(asked).toEqual(["n2<-n1/supervisor:n1", "n3<-n1/supervisor:n1"]);
    asked.length = 0;
    await k.once(3000);
    expect(asked).toEqual(["n3<-n1/supervisor:n1"]);
    lead = "n2";
    asked.length = 0;
    await k.once(3000);
    expect(asked).toEqual(["n3<-n1/supervisor:n1", "n2<-n1/supervisor:n1"]);
    k.close();
  });

  it("fails, naming every member, when no leader confirms", async () => {
    const peers = { n2: await member("n2", () => "none"), n3: "127.0.0.1:1" };
    const k = new MachineKeepalive(500);
    k.setAccess({ member: "n1", peers, secret: SECRET, tls: null });
    await expect(k.once(2000)).rejects.toThrow(/n2: n2 is not the leader.*n3: /);
    k.close();
  });

  it("cannot speak for the machine with the wrong secret", async () => {
    const peers = { n2: await member("n2", () => "n2") };
    const k = new MachineKeepalive(500);
    k.setAccess({ member: "n1", peers, secret: "a-wrong-secret-0123456789abcdef", tls: null });
    await expect(k.once(2000)).rejects.toThrow(/n2: /);
    expect(asked).toEqual([]);
    k.close();
  });
});
