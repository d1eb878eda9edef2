import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts", "test/**/*.test.tsx"],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: "forks",
    // Cluster tests spawn real node processes; two cores, so keep file-level parallelism modest.
    maxWorkers: 2,
  },
});
