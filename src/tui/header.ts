// The console's first line: where it is connected and what the cluster looks like, on one line whatever the
// terminal's width (a wrapped header would push every line below it down).

/**
 * The status after the title: the endpoint (cut from the left, its end names the node), the leader, the counts.
 * At most `width` characters: the endpoint gives first, then the parts from the right.
 */
export function headerStatus(endpoint: string, parts: string[], width: number): string {
  const rest = parts.map((p) => `  ${p}`).join("");
  const room = width - rest.length - 2;
  if (room >= endpoint.length) return `  ${endpoint}${rest}`;
  if (room >= 12) return `  …${endpoint.slice(endpoint.length - room + 1)}${rest}`;
  let line = "";
  for (const p of parts) {
    if (line.length + 2 + p.length > width) break;
    line += `  ${p}`;
  }
  return line;
}
