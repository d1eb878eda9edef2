// The values of systemd's machine and service-manager specifiers (systemd.unit(5), "Specifiers") on the machine
// the agent runs on, as a system manager gives them: %s the manager's user's shell, %h its home, %u/%U/%g/%G its
// user and group, %t /run, %S /var/lib, %b the boot id, %v the kernel release, %o/%w/... from os-release, ...
// %H and %m come from the node (its hostname and machine id), not from here.
import { readFileSync } from "node:fs";
import { arch, release, userInfo } from "node:os";

function readOr(path: string, fallback: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return fallback;
  }
}

/** KEY=value lines (os-release(5), machine-info(5)), quotes removed. */
function envFile(path: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of readOr(path, "").split("\n")) {
    const m = /^([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line.trim());
    if (m) out[m[1]!] = m[2]!.replace(/^(["'])(.*)\1$/, "$2");
  }
  return out;
}

/** systemd's architecture names (%a) for Node's process.arch. */
const ARCHITECTURES: Record<string, string> = {
  x64: "x86-64",
  ia32: "x86",
  arm64: "arm64",
  arm: "arm",
  ppc64: "ppc64-le",
  s390x: "s390x",
  riscv64: "riscv64",
  loong64: "loongarch64",
};

/** systemd's get_shell/get_home_dir: $SHELL/$HOME when absolute, fixed values for root, else the passwd entry. */
function userValues(): Record<string, string> {
  const info = userInfo();
  const root = info.uid === 0;
  const gid = String(info.gid);
  const groupName =
    readOr("/etc/group", "")
      .split("\n")
      .map((l) => l.split(":"))
      .find((f) => f[2] === gid)?.[0] ?? (info.gid === 0 ? "root" : gid);
  return {
    s: absolute(process.env.SHELL) ?? (root ? "/bin/sh" : info.shell || "/bin/sh"),
    h: absolute(process.env.HOME) ?? (root ? "/root" : info.homedir),
    u: info.username,
    U: String(info.uid),
    g: groupName,
    G: gid,
  };
}

let cached: Record<string, string> | undefined;

/** The specifier values by letter (read once). */
export function hostSpecifierValues(hostname: string): Readonly<Record<string, string>> {
  if (cached === undefined) {
    const os = envFile(readOr("/etc/os-release", "") === "" ? "/usr/lib/os-release" : "/etc/os-release");
    cached = {
      ...userValues(),
      a: ARCHITECTURES[arch()] ?? arch(),
      A: os.IMAGE_VERSION ?? "",
      b: readOr("/proc/sys/kernel/random/boot_id", "").trim().replace(/-/g, ""),
      B: os.BUILD_ID ?? "",
      M: os.IMAGE_ID ?? "",
      o: os.ID ?? "",
      w: os.VERSION_ID ?? "",
      W: os.VARIANT_ID ?? "",
      v: release(),
      q: envFile("/etc/machine-info").PRETTY_HOSTNAME ?? "",
      C: "/var/cache",
      E: "/etc",
      L: "/var/log",
      S: "/var/lib",
      t: "/run",
      T: absolute(process.env.TMPDIR) ?? "/tmp",
      V: absolute(process.env.TMPDIR) ?? "/var/tmp",
    };
  }
  // %l is the hostname up to its first dot; %q falls back to the hostname, as systemd's.
  return { ...cached, l: hostname.split(".")[0] ?? hostname, q: cached.q || hostname };
}

function absolute(v: string | undefined): string | undefined {
  return v?.startsWith("/") ? v : undefined;
}
