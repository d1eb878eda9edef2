// The unit-file corpus of test/fixtures/units: bad/ with each file's expected refusal, good/ (ordinary systemd
// files), fleet/ (fleet's own examples, docs and functional fixtures; see fleet/SOURCE.md).
import { readdirSync } from "node:fs";
import { join } from "node:path";

export const FIXTURES = join(import.meta.dirname, "..", "fixtures", "units");

/** The unit files of one corpus directory, sorted, as absolute paths. */
export function corpus(dir: "bad" | "good" | "fleet"): string[] {
  return readdirSync(join(FIXTURES, dir))
    .filter((f) => /\.(service|socket|timer|path)$/.test(f))
    .sort()
    .map((f) => join(FIXTURES, dir, f));
}

export const base = (path: string): string => path.slice(path.lastIndexOf("/") + 1);

const NOT_TIME = "is not a time span (such as 30, 5s, 1min 30s, 500ms, infinity)";
const LITERAL = '(write "%%" for a literal "%")';

/** Each bad file: the line of its error (0: the file as a whole) and the message after `FILE:LINE: `. */
export const BAD: Record<string, [number, string]> = {
  "servce-typo.service": [4, "unknown section [Servce] (did you mean [Service]?)"],
  "no-execstart.service": [
    4,
    "Service has no ExecStart= setting, which is only allowed for Type=oneshot services. Refusing.",
  ],
  "type-forking2.service": [
    3,
    "Type=forking2 is not supported (supported: simple, exec, oneshot, forking, notify)",
  ],
  "type-dbus.service": [
    3,
    "Type=dbus is not supported: Berth runs no D-Bus to watch for BusName= (use Type=notify)",
  ],
  "restart-sometimes.service": [
    3,
    "Restart=sometimes is not one of no, on-success, on-failure, on-abnormal, on-watchdog, on-abort, always",
  ],
  "restartsec-abc.service": [3, `RestartSec=abc ${NOT_TIME}`],
  "empty.service": [0, "the unit file is empty"],
  "comment-only.service": [0, "the unit file is empty"],
  "unknown-unit-key.service": [3, "unknown key Foo= in [Unit] (systemd 252)"],
  "execstrat-typo.service": [
    2,
    "unknown key ExecStrat= in [Service] (systemd 252) (did you mean ExecStart=?)",
  ],
  "lowercase-key.service": [
    2,
    "unknown key execstart= in [Service] (systemd 252) (did you mean ExecStart=?)",
  ],
  "unknown-specifier.service": [2, `unknown specifier "%Z" in "/bin/echo %Z" ${LITERAL}`],
  "printf-specifier.service": [2, `unknown specifier "%5" in "/usr/bin/printf \\"%5d\\\\n\\" 3" ${LITERAL}`],
  "ignored-key-specifier.service": [5, `unknown specifier "%Q" in "app-%Q" ${LITERAL}`],
  "environment-specifier.service": [3, `unknown specifier "%1" in "A=%1" ${LITERAL}`],
  "fragment-specifier.service": [
    2,
    `ExecStart=: specifier "%y" (the unit file's path) is not supported in "%y"`,
  ],
  "socket-section.service": [4, "section [Socket] does not belong in a .service unit"],
  "killmode-some.service": [3, "KillMode=some is not one of control-group, mixed, process, none"],
  "missing-equals.service": [2, 'missing "=" in "ExecStart /bin/true"'],
  "two-execstart.service": [
    3,
    "Service has more than one ExecStart= setting, which is only allowed for Type=oneshot services. Refusing.",
  ],
  "relative-workdir.service": [3, "WorkingDirectory=srv is not an absolute path"],
  "startlimitburst.service": [4, "StartLimitBurst=many is not a number"],
  "oncalender.timer": [5, "unknown key OnCalender= in [Timer] (systemd 252) (did you mean OnCalendar=?)"],
  "xfleet-global-machineof.service": [
    6,
    "[X-Fleet] Global=true can only be combined with MachineMetadata and Conflicts, not MachineOf",
  ],
  "xfleet-unknown-key.service": [
    5,
    '[X-Fleet] unknown key "MachineFoo" (known: MachineID, MachineOf, MachineMetadata, Conflicts, Global, Replaces)',
  ],
};

/** Bad files systemd itself accepts: Berth refuses them for what it does not implement, or for fleet's rules. */
export const BERTH_ONLY = new Set([
  "type-dbus.service",
  "fragment-specifier.service",
  "xfleet-global-machineof.service",
  "xfleet-unknown-key.service",
]);
