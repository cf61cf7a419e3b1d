import { defineConfig, type Plugin } from "vite";
import { writeFileSync, mkdirSync } from "node:fs";
import { resolve } from "node:path";

const outDir = resolve(import.meta.dirname, "../internal/ui/dist");

// keepPlaceholder recreates internal/ui/dist/.keep after Vite empties the
// output directory: the file is committed so `go build` works without a UI build.
function keepPlaceholder(): Plugin {
  return {
    name: "lookout-keep-placeholder",
    closeBundle() {
      mkdirSync(outDir, { recursive: true });
      writeFileSync(resolve(outDir, ".keep"), "");
    },
  };
}

export default defineConfig({
  base: "/",
  plugins: [keepPlaceholder()],
  build: {
    outDir,
    emptyOutDir: true,
    assetsDir: "assets",
    sourcemap: false,
    target: "es2022",
    chunkSizeWarningLimit: 600,
  },
  server: {
    port: 13001,
    proxy: {
      "/prometheus": "http://127.0.0.1:13000",
      "/tempo": "http://127.0.0.1:13000",
      "/api": "http://127.0.0.1:13000",
    },
  },
  test: {
    include: ["src/**/*.test.ts"],
    environment: "node",
  },
});
