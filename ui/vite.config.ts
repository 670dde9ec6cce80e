import { defineConfig } from "vite";
import { svelte } from "@sveltejs/vite-plugin-svelte";
import pkg from "./package.json" with { type: "json" };

// Built once into ui/dist, which Tauri embeds into the app binary (no dev server needed).
export default defineConfig({
  plugins: [svelte()],
  clearScreen: false,
  define: { __APP_VERSION__: JSON.stringify(pkg.version) },
  build: {
    target: "es2022",
    outDir: "dist",
    emptyOutDir: true,
    // Everything as files: the CSP allows only 'self', no data: fonts or inline scripts.
    assetsInlineLimit: 0,
  },
});
