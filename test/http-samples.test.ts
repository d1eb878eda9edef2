// Replays test/fixtures/etcd-v2-samples.txt (raw `curl -si` answers of a real 3-member etcd 3.4.23) against a
// fresh 3-node Berth cluster, in the same order, and compares what a client can see: the status line, the names
// and order of the headers, the values of the headers clients read, and the body byte for byte once indexes,
// times, ids, addresses, member names and stats numbers are normalised (the stats documents keep etcd's field
// names and order, including the rates etcd omits when they are zero). scripts/capture-etcd-fixtures.sh captures
// the fixtures from a real etcd.
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TestCluster } from "./support/cluster.ts";
import {
  type CurlCall,
  type Got,
  loadSamples,
  normaliseBody,
  parseCurl,
  parseResponse,
  type RawResponse,
  rawRequest,
  type Sample,
  view,
} from "./support/etcd-samples.ts";

const SAMPLES = resolve(import.meta.dirname, "fixtures/etcd-v2-samples.txt");

const SINGLE = resolve(import.meta.dirname, "fixtures/etcd-v2-samples-single-member.txt");

/**
 * The single-member file: `### curl ...` then the answer. Its command lines are not shell-quoted
 * (`-d value=Hello world`, `?a&b`), so they are re-quoted here into the form parseCurl reads.
 */
function loadSingleMemberSamples(): Sample[] {
  const text = readFileSync(SINGLE, "utf8");
  const out: Sample[] = [];
  for (const block of text.split(/^### /m).slice(1)) {
    const nl = block.indexOf("\n");
    const line = block.slice(0, nl).trim();
    let rest = block.slice(nl + 1);
    const responses: RawResponse[] = [];
    while (rest.startsWith("HTTP/")) {
      const p = parseResponse(rest);
      responses.push(p.resp);
      rest = p.rest.replace(/^\n+/, "");
    }
    const watch = /^curl -si "([^"]+)" \(then a PUT value=(\w+) from another client\)$/.exec(line);
    if (watch) {
      const url = watch[1] as string;
      const keyUrl = url.replace(/\?.*$/, "");
      out.push({
        title: `GET ?wait=true (long poll) [single] ${line}`,
        command: `curl -si '${url}' & sleep 1; curl -s -X PUT '${keyUrl}' -d 'value=${watch[2]}' >/dev/null; wait`,
        responses,
      });
      continue;
    }
    const m = /^curl -si (?:-X (\w+) )?(\S+)((?: -d .*)?)$/.exec(line);
    if (!m) throw new Error(`unparsable single-member command: ${line}`);
    const data = (m[3] ?? "")
      .split(/ -d /)
      .slice(1)
      .map((d) => ` -d '${d}'`)
      .join("");
    out.push({
      title: `[single] ${line}`,
      command: `curl -si ${m[1] ? `-X ${m[1]} ` : ""}'${m[2]}'${data}`,
      responses,
    });
  }
  return out;
}

// ---- The replay -------------------------------------------------------------------------------------------

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

replay("etcd v2 raw samples (3 members) replayed against a 3-node Berth cluster", loadSamples(SAMPLES), 3, {
  "23791": "n1",
  "23792": "n2",
  "23793": "n3",
});
replay(
  "etcd v2 raw samples (single member) replayed against a 1-node Berth cluster",
  loadSingleMemberSamples(),
  1,
  { "33791": "n1" },
);

function replay(label: string, samples: Sample[], size: number, PORT_TO_NODE: Record<string, string>) {
  describe(label, () => {
    let cluster: TestCluster;

    const berthUrl = (u: URL): URL => {
      const node = PORT_TO_NODE[u.port];
      if (!node) throw new Error(`unknown sample port ${u.port}`);
      return new URL(u.pathname + u.search, cluster.httpUrl(node));
    };
    /** etcd index -> Berth index, learnt from the answers compared so far (for waitIndex/prevIndex in URLs). */
    const indexMap = new Map<number, number>();
    const learn = (expected: string[], actual: string[]) => {
      if (expected.length !== actual.length) return;
      expected.forEach((e, i) => {
        indexMap.set(Number(e), Number(actual[i]));
      });
    };
    const indexesIn = (body: string) =>
      [...body.matchAll(/"(?:modifiedIndex|createdIndex)":(\d+)/g)].map((m) => m[1] as string);
    const learnFrom = (exp: RawResponse, got: RawResponse) => {
      const h = (r: RawResponse) => r.headers.filter(([k]) => k === "X-Etcd-Index").map(([, v]) => v);
      learn(h(exp), h(got));
      learn(indexesIn(exp.body), indexesIn(got.body));
    };
    const translate = (u: URL): URL => {
      const out = new URL(u);
      for (const p of ["waitIndex", "prevIndex"]) {
        const v = out.searchParams.get(p);
        const mapped = v === null ? undefined : indexMap.get(Number(v));
        // Only the query value changes; the rest of the query string is kept byte for byte.
        if (mapped !== undefined) out.search = out.search.replace(`${p}=${v}`, `${p}=${mapped}`);
      }
      return out;
    };
    const call = (c: CurlCall, onHeaders?: () => void) =>
      rawRequest(c.method, berthUrl(translate(c.url)), c.data, onHeaders);

    /**
     * etcd reports send/receive rates only while appends flow (a rate older than a second is 0 and omitted); the
     * samples were captured right after writes. A write just before each stats sample puts Berth in the same
     * state however long the replay took to get there (a hidden key: no later sample lists it).
     */
    const recentTraffic = () =>
      rawRequest("PUT", new URL("/v2/keys/_stats_probe", cluster.httpUrl("n1")), "value=1");

    async function roles(): Promise<{ leader: string; followers: string[] }> {
      for (let attempt = 0; attempt < 50; attempt++) {
        const states = await Promise.all(
          ["n1", "n2", "n3"].map(async (n) => {
            const r = await rawRequest("GET", new URL("/v2/stats/self", cluster.httpUrl(n)), null);
            return [n, (JSON.parse(r.body) as { state: string }).state] as const;
          }),
        );
        const leader = states.find(([, s]) => s === "StateLeader")?.[0];
        if (leader)
          return { leader, followers: states.filter(([, s]) => s === "StateFollower").map(([n]) => n) };
        await sleep(100);
      }
      throw new Error("no leader");
    }

    /** Runs a sample's command line; returns the answers that `curl -si` would have printed. */
    async function run(s: Sample): Promise<{ got: Got[]; trigger?: string }> {
      if (s.title.startsWith("GET ?wait=true (long poll)")) {
        const [watchCmd, putCmd] = s.command.split(/&|;/).filter((p) => p.trim().startsWith("curl"));
        const w = parseCurl(watchCmd as string);
        const put = parseCurl(putCmd as string);
        let headersIn!: () => void;
        const headersSeen = new Promise<void>((r) => (headersIn = r));
        const watching = call(w, () => headersIn());
        await headersSeen; // etcd flushes a watch's headers at once; the PUT comes after, like the sample's sleep
        const putAnswer = await call(put);
        return { got: [await watching], trigger: putAnswer.body };
      }
      if (s.command.startsWith("for ")) {
        const r = await roles();
        await recentTraffic();
        const node = s.title.includes("on a follower") ? r.followers[0] : r.leader;
        const path = s.title.includes("/v2/stats/leader") ? "/v2/stats/leader" : "/v2/stats/self";
        return { got: [await rawRequest("GET", new URL(path, cluster.httpUrl(node as string)), null)] };
      }
      if (s.title === "GET /v2/stats/self (follower b2)") {
        // b2 was a follower in the sample; ask whichever Berth member is a follower.
        const r = await roles();
        await recentTraffic();
        return {
          got: [
            await rawRequest(
              "GET",
              new URL("/v2/stats/self", cluster.httpUrl(r.followers[0] as string)),
              null,
            ),
          ],
        };
      }
      const got: Got[] = [];
      for (const part of s.command.split(";").map((p) => p.trim())) {
        const sl = /^sleep (\d+)$/.exec(part);
        if (sl) {
          // The sample waits 7 s after a ttl=5 refresh; waiting out the TTL (plus expiry slack) is enough.
          await sleep(5_500);
          continue;
        }
        const c = parseCurl(part);
        const r = await call(c);
        if (!c.silent) got.push(r);
      }
      return { got };
    }

    beforeAll(async () => {
      cluster = await TestCluster.start(size);
    }, 60_000);
    afterAll(async () => {
      await cluster?.stop();
    });

    it("parses every sample block", () => {
      expect(samples.length).toBeGreaterThan(25);
      for (const s of samples) expect(s.responses.length, s.title).toBeGreaterThan(0);
    });

    for (const s of samples) {
      it(`${s.title}`, async () => {
        let { got, trigger } = await run(s);
        const unsorted = /\/v2\/keys\//.test(s.command) && !/sorted=true|wait=true/.test(s.command);
        if (s.title.startsWith("GET via a follower")) {
          // A local read on a follower races the commit reaching it (etcd's too); Berth's follower may not have
          // applied the PUT that was just acknowledged. Allow it up to 1 s, and say so if it needed that.
          const deadline = Date.now() + 1000;
          let retried = false;
          const want = view(s.title, s.responses[0] as RawResponse, unsorted).body;
          while (view(s.title, got[0] as Got).body !== want && Date.now() < deadline) {
            await sleep(20);
            ({ got } = await run(s));
            retried = true;
          }
          if (retried) console.warn(`${s.title}: the follower had not applied the write yet; read again`);
        }
        expect(got.length, "number of answers").toBe(s.responses.length);
        got.forEach((g, i) => {
          const exp = s.responses[i] as RawResponse;
          expect(view(s.title, g, unsorted)).toEqual(view(s.title, exp, unsorted));
          learnFrom(exp, g);
          const cl = g.headers.find(([k]) => k === "Content-Length");
          if (cl) expect(Number(cl[1]), "Content-Length matches the body").toBe(Buffer.byteLength(g.body));
        });
        if (s.trigger !== undefined) {
          expect(normaliseBody(s.title, trigger ?? "")).toBe(normaliseBody(s.title, s.trigger));
          learn(indexesIn(s.trigger), indexesIn(trigger ?? ""));
        }
      }, 15_000);
    }

    if (size === 3)
      it("the seed's curl commands, run with the real curl binary", async () => {
        const n1 = cluster.httpUrl("n1");
        const n3 = cluster.httpUrl("n3");
        const put = spawnSync("sh", ["-c", `curl -L -X PUT ${n1}/v2/keys/message -d value="value2"`], {
          encoding: "utf8",
          timeout: 10_000,
        });
        expect(put.status).toBe(0);
        const set = JSON.parse(put.stdout) as { action: string; node: { key: string; value: string } };
        expect(set.action).toBe("set");
        expect(set.node).toMatchObject({ key: "/message", value: "value2" });
        // n3 serves the GET from its own replica; give the commit a moment to reach it (etcd's followers race too).
        let get = spawnSync("sh", ["-c", `curl -L ${n3}/v2/keys/message`], {
          encoding: "utf8",
          timeout: 10_000,
        });
        for (let i = 0; i < 50 && !get.stdout.includes('"value2"'); i++) {
          await sleep(20);
          get = spawnSync("sh", ["-c", `curl -L ${n3}/v2/keys/message`], {
            encoding: "utf8",
            timeout: 10_000,
          });
        }
        expect(get.status).toBe(0);
        const doc = JSON.parse(get.stdout) as {
          action: string;
          node: { key: string; value: string; modifiedIndex: number };
        };
        expect(doc.action).toBe("get");
        expect(doc.node).toMatchObject({
          key: "/message",
          value: "value2",
          modifiedIndex: (set.node as { modifiedIndex?: number }).modifiedIndex,
        });
        expect(get.stdout.endsWith("}\n")).toBe(true);
      });
  });
}
