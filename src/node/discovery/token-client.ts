// etcd v2 keys requests on a discovery token's URL. The URL is the token's directory itself, as etcd's own
// discovery client uses it: https://discovery.etcd.io/TOKEN (the service maps it onto its backend's keys), or
// http://HOST:2379/v2/keys/discovery/TOKEN on any etcd v2 (or Berth) endpoint. Requests go to URL/_config/size,
// URL/MEMBER-ID and URL itself.

/** A v2 node as the keys API returns it. */
export interface TokenNode {
  key: string;
  value?: string;
  createdIndex: number;
  modifiedIndex?: number;
  dir?: boolean;
}

/** An error answer of the keys API (errorCode 100 key not found, 105 node exists, 401 event index cleared). */
export class KeysError extends Error {
  constructor(
    readonly errorCode: number,
    message: string,
    readonly index: number,
  ) {
    super(message);
  }
}

/** The discovery service could not be reached or did not answer like a v2 keys API. */
export class DiscoveryUnreachable extends Error {}

export const KEY_NOT_FOUND = 100;
export const NODE_EXIST = 105;
export const EVENT_INDEX_CLEARED = 401;

interface KeysAnswer {
  action?: string;
  node?: TokenNode & { nodes?: TokenNode[] };
  errorCode?: number;
  message?: string;
  cause?: string;
  index?: number;
}

export class TokenClient {
  readonly base: string;

  constructor(url: string) {
    this.base = url.replace(/\/+$/, "");
  }

  /** GET of a key below the token (or of the token directory with path ""): the node and the store's index. */
  async get(
    path: string,
    timeoutMs: number,
  ): Promise<{ node: TokenNode & { nodes?: TokenNode[] }; index: number }> {
    return this.request("GET", this.url(path), undefined, timeoutMs);
  }

  /** Creates a key below the token only if it does not exist yet (etcd's prevExist=false). */
  async create(path: string, value: string, timeoutMs: number): Promise<{ node: TokenNode; index: number }> {
    return this.request("PUT", `${this.url(path)}?prevExist=false`, value, timeoutMs);
  }

  /** Waits for the next change under the token after `afterIndex` (null when `timeoutMs` passes first). */
  async waitAfter(
    afterIndex: number,
    timeoutMs: number,
  ): Promise<{ node: TokenNode; action: string } | null> {
    try {
      const r = await this.request(
        "GET",
        `${this.url("")}?wait=true&recursive=true&waitIndex=${afterIndex + 1}`,
        undefined,
        timeoutMs,
      );
      return { node: r.node, action: r.action };
    } catch (err) {
      if (err instanceof DiscoveryUnreachable && /timed out|aborted/i.test(err.message)) return null;
      throw err;
    }
  }

  private url(path: string): string {
    return path === "" ? this.base : `${this.base}/${path}`;
  }

  private async request(
    method: string,
    url: string,
    value: string | undefined,
    timeoutMs: number,
  ): Promise<{ node: TokenNode & { nodes?: TokenNode[] }; index: number; action: string }> {
    let res: Response;
    let text: string;
    try {
      res = await fetch(url, {
        method,
        redirect: "follow",
        signal: AbortSignal.timeout(timeoutMs),
        ...(value !== undefined && {
          headers: { "content-type": "application/x-www-form-urlencoded" },
          body: new URLSearchParams({ value }).toString(),
        }),
      });
      text = await res.text();
    } catch (err) {
      const e = err as Error;
      const why = e.name === "TimeoutError" || e.name === "AbortError" ? "timed out" : e.message;
      throw new DiscoveryUnreachable(`${method} ${url}: ${why}`);
    }
    let body: KeysAnswer;
    try {
      body = JSON.parse(text) as KeysAnswer;
    } catch {
      throw new DiscoveryUnreachable(
        `${method} ${url}: HTTP ${res.status}, not an etcd v2 keys answer (${text.slice(0, 120).trim()})`,
      );
    }
    const index = Number(res.headers.get("x-etcd-index") ?? body.index ?? 0);
    if (typeof body.errorCode === "number")
      throw new KeysError(body.errorCode, `${body.message ?? "error"} (${body.cause ?? url})`, index);
    if (!body.node) throw new DiscoveryUnreachable(`${method} ${url}: HTTP ${res.status} without a node`);
    return { node: body.node, index, action: body.action ?? "" };
  }
}
