// `berth status` of a timer shows what systemctl shows: active (waiting), when it fires next and what it starts.
process.env.TZ = "UTC";

import { describe, expect, it } from "vitest";
import { renderStatus } from "../src/cli/status.ts";
import type { UnitStatus } from "../src/client/protocol.ts";

describe("status of a timer", () => {
  it("shows Trigger: (the next elapse, and how long until it) and Triggers: (the unit it starts)", () => {
    const now = Date.UTC(2026, 11, 7, 10, 0, 0);
    const u: UnitStatus = {
      name: "backup.timer",
      description: "Nightly backup",
      machine: "m".repeat(32),
      machineName: "core-01",
      publicIp: null,
      mainCommand: null,
      journal: [],
      state: {
        name: "backup.timer",
        hash: "h",
        load: "loaded",
        active: "active",
        sub: "waiting",
        mainPid: null,
        since: now - 5000,
        steps: [],
        memoryBytes: null,
        restarts: 0,
        timer: {
          unit: "backup.service",
          nextElapse: Date.UTC(2026, 11, 8),
          lastTrigger: null,
          persistent: true,
        },
      },
    };
    const text = renderStatus(u, new Map(), now);
    expect(text).toContain("   Active: active (waiting) since Mon 2026-12-07 09:59:55 UTC; 5s ago");
    expect(text).toContain("  Trigger: Tue 2026-12-08 00:00:00 UTC; 14h left");
    expect(text).toContain(" Triggers: ● backup.service");
    u.state.timer!.nextElapse = null;
    u.state.sub = "elapsed";
    expect(renderStatus(u, new Map(), now)).toContain("  Trigger: n/a");
  });
});
