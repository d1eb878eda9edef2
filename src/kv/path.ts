// Key normalisation exactly as etcd does it: path.Clean(path.Join("/", key)), so "a//b/../c/" names "/a/c".

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
