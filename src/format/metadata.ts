// A machine's metadata as fleetctl list-machines prints it (`region=eu,disk=ssd`, "-" when empty), for the CLI and
// the console.

/** Keys sorted, `key=value` joined by commas; "-" for none. */
export function metadataText(md: Record<string, string>): string {
  const keys = Object.keys(md).sort();
  return keys.length === 0 ? "-" : keys.map((k) => `${k}=${md[k]}`).join(",");
}
