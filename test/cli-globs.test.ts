// The unit CLI's name patterns (list-units, start, stop... with globs) match as fleetctl's Go path.Match does, with
// the one glob engine placement uses (src/unit/glob.ts). Its own engine before took an escaped "-" in a class for
// a range ("[a\-z]" matched "b") and an exact name with systemd's "\x2d" escape for a pattern.
import { describe, expect, it } from "vitest";
import { filterByArgs, resolveKnown } from "../src/cli/unit-support.ts";
import type { UnitInfo } from "../src/client/protocol.ts";
import { globMatch } from "../src/unit/glob.ts";

const names = [
  "weba.service",
  "webb.service",
  "web-.service",
  "webz.service",
  "foo\\x2dbar.service",
  "foox2dbar.service",
];
const units = names.map((name) => ({ name }) as UnitInfo);
const filter = (...args: string[]) => filterByArgs(names, args, (n) => n);

describe("unit name patterns in the CLI", () => {
  it("take an escaped - in a class as the character, as Go's path.Match", () => {
    const pattern = "web[a\\-z].service";
    expect(filter(pattern)).toEqual(["weba.service", "web-.service", "webz.service"]);
    expect(resolveKnown([pattern], units).units.map((u) => u.name)).toEqual(filter(pattern));
    // The placement engine agrees, name by name.
    expect(names.filter((n) => globMatch(pattern, n))).toEqual(filter(pattern));
  });

  it("match a name that is no pattern exactly, systemd's \\x escapes included", () => {
    expect(filter("foo\\x2dbar.service")).toEqual(["foo\\x2dbar.service"]);
    expect(filter("foo\\x2dbar")).toEqual(["foo\\x2dbar.service"]);
  });

  it("keep the rest of Go's syntax: *, ?, classes with ranges and negation", () => {
    expect(filter("web?.service")).toEqual(["weba.service", "webb.service", "web-.service", "webz.service"]);
    expect(filter("web[^a-y].service")).toEqual(["web-.service", "webz.service"]);
    expect(filter("*x2d*")).toEqual(["foo\\x2dbar.service", "foox2dbar.service"]);
  });
});
