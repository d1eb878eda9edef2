// Key normalisation exactly as etcd does it: path.Clean(path.Join("/", key)), so "a//b/../c/" names "/a/c".
import { MAX_KEY_BYTES, MAX_KEY_DEPTH } from "./types.ts";

/** Go's path.Clean of "/" + key: always rooted, no empty, "." or ".." segments, no trailing slash. */
export function cleanKey(key: string): string {
  const out: string[] = [];
  for (const seg of key.split("/")) {
    if (seg === "" || seg === ".") continue;
    if (seg === "..") out.pop();
    else out.push(seg);
  }
  return `/${out.join("/")}`;
}

/** The path's segments below the root ("/" has none). */
export function segments(cleaned: string): string[] {
  return cleaned === "/" ? [] : cleaned.slice(1).split("/");
}

/** Go's path.Join for a cleaned parent and one name. */
export function joinKey(parent: string, name: string): string {
  return parent === "/" ? `/${name}` : `${parent}/${name}`;
}

/** etcd's isHidden for watchers: the part of keyPath below watchPath contains a segment starting with "_". */
export function isHiddenBelow(watchPath: string, keyPath: string): boolean {
  // When a directory is deleted the watcher may sit deeper than the event's key: never hidden then.
  if (watchPath.length > keyPath.length) return false;
  return cleanKey(`/${keyPath.slice(watchPath.length)}`).includes("/_");
}

/**
 * Why a key may not be written, or null: longer than MAX_KEY_BYTES as sent, or deeper than MAX_KEY_DEPTH once
 * cleaned. Checked before a write is proposed and again when one is applied, so an entry in an older log is
 * answered with an error instead of building the tree it names.
 */
export function keyLimitError(key: string): string | null {
  // UTF-8 is at most 3 bytes per UTF-16 unit: most keys skip the byte count.
  if (key.length * 3 > MAX_KEY_BYTES) {
    const bytes = Buffer.byteLength(key);
    if (bytes > MAX_KEY_BYTES) return `key is ${bytes} bytes; the limit is ${MAX_KEY_BYTES}`;
  }
  const depth = segments(cleanKey(key)).length;
  if (depth > MAX_KEY_DEPTH) return `key has ${depth} levels; the limit is ${MAX_KEY_DEPTH}`;
  return null;
}
