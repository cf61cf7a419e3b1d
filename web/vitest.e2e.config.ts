import { defineConfig } from "vitest/config";

// Browser tests: real lookout + webstore binaries, Debian's Chromium driven by
// playwright-core. One file at a time; they share nothing but the machine.
export default defineConfig({
  test: {
    include: ["e2e/**/*.e2e.ts"],
    environment: "node",
    testTimeout: 180_000,
    hookTimeout: 240_000,
    fileParallelism: false,
  },
});
