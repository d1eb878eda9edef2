// Replays test/fixtures/etcd-v2-samples.txt (raw `curl -si` answers of a real 3-member etcd 3.4.23) against a
// fresh 3-node Berth cluster, in the same order, and compares what a client can see: the status line, the names
// and order of the headers, the values of the headers clients read, and the body byte for byte once indexes,
// times, ids, addresses, member names and stats numbers are normalised (the stats documents keep etcd's field
// names and order, including the rates etcd omits when they are zero). scripts/capture-etcd-fixtures.sh captures
// the fixtures from a real etcd.
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { request } from "node:http";
import { resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TestCluster } from "./support/cluster.ts";

const SAMPLES = resolve(import.meta.dirname, "fixtures/etcd-v2-samples.txt");

/** Headers Node adds on its own and clients do not rely on; Date differs every run. */
const IGNORED_HEADERS = new Set(["date", "connection", "keep-alive"]);

interface RawResponse {
  statusLine: string;
  headers: [string, string][];
  body: string;
}

interface Sample {
  title: string;
  command: string;
  responses: RawResponse[];
  /** The wait block's second document: the PUT answer that triggered the watch. */
  trigger?: string;
}

/** One `HTTP/1.1 ...` answer as printed by `curl -si`, body cut by Content-Length (or first line if chunked). */
function parseResponse(text: string): { resp: RawResponse; rest: string } {
  // curl -si prints the header section as sent (CRLF); the file's own lines end in LF.
  const m = /\r?\n\r?\n/.exec(text);
  if (!m) throw new Error(`no header/body separator in ${text.slice(0, 60)}`);
  const sep = m.index;
  const head = text.slice(0, sep).split(/\r?\n/);
  const statusLine = head[0] as string;
  const headers = head.slice(1).map((l): [string, string] => {
    const i = l.indexOf(":");
    return [l.slice(0, i), l.slice(i + 1).trim()];
  });
  const after = Buffer.from(text.slice(sep + m[0].length), "utf8");
  const len = headers.find(([k]) => k.toLowerCase() === "content-length");
  let bodyLen: number;
  if (len) bodyLen = Number(len[1]);
  else {
    const nl = after.indexOf("\n");
    bodyLen = nl < 0 ? after.length : nl + 1;
  }
  return {
    resp: { statusLine, headers, body: after.subarray(0, bodyLen).toString("utf8") },
    rest: after.subarray(bodyLen).toString("utf8"),
  };
}

function loadSamples(): Sample[] {
  const text = readFileSync(SAMPLES, "utf8");
  const out: Sample[] = [];
  for (const block of text.split(/^={10,}\n/m).slice(1)) {
    const m = /^### (.*)\n\$ (.*)\n-{10,}\n([\s\S]*)$/.exec(block);
    if (!m) throw new Error(`unparsable sample block: ${block.slice(0, 80)}`);
    const [, title, command, raw] = m as unknown as [string, string, string, string];
    const responses: RawResponse[] = [];
    let rest = raw;
    let trigger: string | undefined;
    while (rest.startsWith("HTTP/")) {
      const p = parseResponse(rest);
      responses.push(p.resp);
      rest = p.rest.replace(/^\n+/, "");
    }
    const t = /^### \(the PUT response that triggered it:\)\n(.*\n)/.exec(rest);
    if (t) trigger = t[1];
    out.push({ title, command, responses, trigger });
  }
  return out;
}

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

// ---- Translating curl command lines -----------------------------------------------------------------------

interface CurlCall {
  method: string;
  url: URL;
  data: string | null;
  silent: boolean; // `>/dev/null`: sent, answer not compared
}

function shellWords(s: string): string[] {
  const words: string[] = [];
  const re = /'([^']*)'|"([^"]*)"|(\S+)/g;
  for (let m = re.exec(s); m; m = re.exec(s)) words.push(m[1] ?? m[2] ?? (m[3] as string));
  return words;
}

function parseCurl(cmd: string): CurlCall {
  const w = shellWords(cmd.trim());
  if (w[0] !== "curl") throw new Error(`not a curl command: ${cmd}`);
  let method = "";
  let url = "";
  const data: string[] = [];
  let silent = false;
  for (let i = 1; i < w.length; i++) {
    const a = w[i] as string;
    if (a === "-X") method = w[++i] as string;
    else if (a === "-d") data.push(w[++i] as string);
    else if (a === ">/dev/null") silent = true;
    else if (a.startsWith("http")) url = a;
  }
  return {
    method: method || (data.length > 0 ? "POST" : "GET"),
    url: new URL(url),
    data: data.length > 0 ? data.join("&") : null,
    silent,
  };
}

// ---- Raw HTTP ----------------------------------------------------------------------------------------------

interface Got extends RawResponse {
  /** rawHeaders order, names as sent */
  names: string[];
}

function rawRequest(
  method: string,
  url: URL,
  data: string | null,
  onHeaders?: () => void,
  follow = true,
): Promise<Got> {
  return new Promise((resolveGot, reject) => {
    const headers: Record<string, string> = { "User-Agent": "curl/7.88.1", Accept: "*/*" };
    if (data !== null) {
      headers["Content-Type"] = "application/x-www-form-urlencoded";
      headers["Content-Length"] = String(Buffer.byteLength(data));
    }
    const req = request(
      { host: url.hostname, port: url.port, method, path: url.pathname + url.search, headers, agent: false },
      (res) => {
        const pairs: [string, string][] = [];
        for (let i = 0; i < res.rawHeaders.length; i += 2)
          pairs.push([res.rawHeaders[i] as string, res.rawHeaders[i + 1] as string]);
        onHeaders?.();
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("error", reject);
        res.on("end", () => {
          const got: Got = {
            statusLine: `HTTP/${res.httpVersion} ${res.statusCode} ${res.statusMessage}`,
            headers: pairs,
            names: pairs.map(([k]) => k),
            body: Buffer.concat(chunks).toString("utf8"),
          };
          const loc = res.headers.location;
          // curl -L: follow redirects (etcd v2 never redirects key requests, but Berth must not differ silently)
          if (follow && loc && res.statusCode && res.statusCode >= 300 && res.statusCode < 400) {
            const next = new URL(loc, url);
            const keep = res.statusCode === 307 || res.statusCode === 308;
            rawRequest(keep ? method : "GET", next, keep ? data : null, undefined, true).then(
              resolveGot,
              reject,
            );
            return;
          }
          resolveGot(got);
        });
      },
    );
    req.on("error", reject);
    req.end(data ?? undefined);
  });
}

// ---- Normalising ------------------------------------------------------------------------------------------

/** etcd lists an unsorted directory in Go map order (random); sort such listings by key on both sides. */
function sortListing(body: string): string {
  interface N {
    key?: string;
    nodes?: N[];
  }
  const sortNodes = (n: N | undefined) => {
    if (!n?.nodes) return;
    n.nodes.sort((a, b) => ((a.key ?? "") < (b.key ?? "") ? -1 : 1));
    for (const c of n.nodes) sortNodes(c);
  };
  if (!body.includes('"nodes":')) return body;
  const doc = JSON.parse(body) as { node?: N };
  sortNodes(doc.node);
  return `${JSON.stringify(doc)}${body.endsWith("\n") ? "\n" : ""}`;
}

function normaliseBody(title: string, s: string, unsortedListing = false): string {
  let out = (unsortedListing ? sortListing(s) : s)
    .replace(/"(createdIndex|modifiedIndex|index)":\d+/g, '"$1":N')
    .replace(/\/queue\/\d{20}/g, "/queue/QUEUEKEY")
    .replace(/\[\d+ != \d+\]/g, "[N != N]")
    // Go's RFC3339Nano (fraction without trailing zeros) and time.Duration.String() formats.
    .replace(/"(expiration|startTime)":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d*[1-9])?Z"/g, '"$1":"TIME"')
    .replace(
      /"uptime":"((\d+h)?(\d+m)?\d+(\.\d*[1-9])?s|\d+(\.\d*[1-9])?(ms|µs|ns))"/g,
      '"uptime":"DURATION"',
    )
    // etcd prints ids (types.ID) in hex without leading zeros; a zero-padded id stays visible as a difference.
    .replace(/"(id|leader)":"[1-9a-f][0-9a-f]{0,15}"/g, '"$1":"ID"')
    .replace(/"[1-9a-f][0-9a-f]{0,15}":\{/g, '"ID":{')
    .replace(/https?:\/\/127\.0\.0\.\d+:\d+/g, "http://HOST:PORT")
    .replace(/"name":"[bns]\d"/g, '"name":"NAME"');
  if (/stats/.test(title)) out = out.replace(/":-?[\d.e+-]+/g, '":NUM');
  if (title.includes("/v2/stats/self")) out = out.replace(/"state":"State\w+"/, '"state":"STATE"');
  return out;
}

/** Everything about one answer a client can tell apart, normalised. */
function view(title: string, r: RawResponse, unsortedListing = false) {
  const names = r.headers.map(([k]) => k).filter((k) => !IGNORED_HEADERS.has(k.toLowerCase()));
  const values: Record<string, string> = {};
  for (const [k, v] of r.headers) {
    if (/^(Content-Type|Access-Control-.*|Allow|X-Content-Type-Options|Transfer-Encoding)$/i.test(k))
      values[k] = v;
    else if (/^(X-Etcd-Index|X-Raft-Index|X-Raft-Term)$/i.test(k)) values[k] = /^\d+$/.test(v) ? "N" : v;
    else if (/^X-Etcd-Cluster-Id$/i.test(k)) values[k] = /^[1-9a-f][0-9a-f]{0,15}$/.test(v) ? "ID" : v;
  }
  return {
    title,
    statusLine: r.statusLine,
    headerNames: names,
    values,
    body: normaliseBody(title, r.body, unsortedListing),
  };
}

// ---- The replay -------------------------------------------------------------------------------------------

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

replay("etcd v2 raw samples (3 members) replayed against a 3-node Berth cluster", loadSamples(), 3, {
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
