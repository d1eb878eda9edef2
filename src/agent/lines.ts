// Process and container output into the journal: a byte stream cut into lines.
import type { Readable } from "node:stream";
import { StringDecoder } from "node:string_decoder";

/** Calls onLine for each complete line of a stream (and the unterminated rest at its end). */
export function pipeLines(stream: Readable, onLine: (text: string) => void): void {
  const decoder = new StringDecoder("utf8");
  let buf = "";
  stream.on("data", (chunk: Buffer) => {
    buf += decoder.write(chunk);
    let nl = buf.indexOf("\n");
    while (nl >= 0) {
      onLine(buf.slice(0, nl).replace(/\r$/, ""));
      buf = buf.slice(nl + 1);
      nl = buf.indexOf("\n");
    }
  });
  stream.on("end", () => {
    buf += decoder.end();
    if (buf !== "") onLine(buf);
    buf = "";
  });
  stream.on("error", () => {});
}
