// Reading `curl -si` captures of a real etcd (test/fixtures, written by scripts/capture-etcd-fixtures.sh), sending
// their requests to Berth as curl would, and reducing both answers to what a client can tell apart.
import { readFileSync } from "node:fs";
import { request } from "node:http";

/** Headers Node adds on its own and clients do not rely on; Date differs every run. */
export const IGNORED_HEADERS = new Set(["date", "connection", "keep-alive"]);

export interface RawResponse {
  statusLine: string;
  headers: [string, string][];
  body: string;
}

export interface Sample {
  title: string;
  command: string;
  responses: RawResponse[];
  /** The wait block's second document: the PUT answer that triggered the watch. */
  trigger?: string;
}

/** One `HTTP/1.1 ...` answer as printed by `curl -si`, body cut by Content-Length (or first line if chunked). */
export function parseResponse(text: string): { resp: RawResponse; rest: string } {
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

/** The blocks of a file in the etcd-v2-samples.txt format: `### title`, `$ command`, a dashed line, the answers. */
export function loadSamples(file: string): Sample[] {
  const text = readFileSync(file, "utf8");
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

// ---- Translating curl command lines -----------------------------------------------------------------------

export interface CurlCall {
  method: string;
  url: URL;
  data: string | null;
  silent: boolean; // `>/dev/null`: sent, answer not compared
  /** -u NAME:PASSWORD (as an Authorization header) and -H headers. */
  headers: Record<string, string>;
}

export function shellWords(s: string): string[] {
  const words: string[] = [];
  const re = /'([^']*)'|"([^"]*)"|(\S+)/g;
  for (let m = re.exec(s); m; m = re.exec(s)) words.push(m[1] ?? m[2] ?? (m[3] as string));
  return words;
}

export function parseCurl(cmd: string): CurlCall {
  const w = shellWords(cmd.trim());
  if (w[0] !== "curl") throw new Error(`not a curl command: ${cmd}`);
  let method = "";
  let url = "";
  const data: string[] = [];
  let silent = false;
  const headers: Record<string, string> = {};
  for (let i = 1; i < w.length; i++) {
    const a = w[i] as string;
    if (a === "-X") method = w[++i] as string;
    else if (a === "-u") headers.Authorization = `Basic ${Buffer.from(w[++i] as string).toString("base64")}`;
    else if (a === "-H") {
      const h = w[++i] as string;
      const c = h.indexOf(":");
      headers[h.slice(0, c)] = h.slice(c + 1).trim();
    } else if (a === "-d") data.push(w[++i] as string);
    else if (a === ">/dev/null") silent = true;
    else if (a.startsWith("http")) url = a;
  }
  return {
    method: method || (data.length > 0 ? "POST" : "GET"),
    url: new URL(url),
    data: data.length > 0 ? data.join("&") : null,
    silent,
    headers,
  };
}

// ---- Raw HTTP ----------------------------------------------------------------------------------------------

export interface Got extends RawResponse {
  /** rawHeaders order, names as sent */
  names: string[];
}

export function rawRequest(
  method: string,
  url: URL,
  data: string | null,
  onHeaders?: () => void,
  follow = true,
  extra: Record<string, string> = {},
): Promise<Got> {
  return new Promise((resolveGot, reject) => {
    const headers: Record<string, string> = { "User-Agent": "curl/7.88.1", Accept: "*/*" };
    if (data !== null) {
      headers["Content-Type"] = "application/x-www-form-urlencoded";
      headers["Content-Length"] = String(Buffer.byteLength(data));
    }
    Object.assign(headers, extra);
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
            rawRequest(keep ? method : "GET", next, keep ? data : null, undefined, true, extra).then(
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
export function sortListing(body: string): string {
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

export function normaliseBody(title: string, s: string, unsortedListing = false): string {
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
export function view(title: string, r: RawResponse, unsortedListing = false) {
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
