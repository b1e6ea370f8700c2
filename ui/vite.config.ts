// Builds the UI (index.html) and the offline GraphiQL page (graphiql.html) into the Python package,
// which `provgraph serve` serves at / and /graphql: no CDN, no Node at install time.
import { resolve } from "node:path";
import { defineConfig } from "vite";

export default defineConfig({
  base: "/",
  esbuild: { jsx: "automatic" },
  build: {
    outDir: resolve(__dirname, "../api/ui_dist"),
    emptyOutDir: true,
    assetsDir: "assets",
    chunkSizeWarningLimit: 4000,
    rollupOptions: {
      input: { index: resolve(__dirname, "index.html"), graphiql: resolve(__dirname, "graphiql.html") },
    },
  },
});
