// Builds the viewer into the Python package, as one classic script so that it also runs from file://
// (browsers refuse ES module scripts and crossorigin requests there).
import { defineConfig, type Plugin } from "vite";

const classicScripts: Plugin = {
  name: "embedscope-classic-scripts",
  enforce: "post",
  transformIndexHtml(html) {
    return html
      .replace(/<script type="module" crossorigin /g, "<script defer ")
      .replace(/ crossorigin(?=[ >])/g, "");
  },
};

export default defineConfig({
  base: "./",
  plugins: [classicScripts],
  build: {
    outDir: "../src/embedscope/server/static",
    emptyOutDir: true,
    target: "es2020",
    modulePreload: false,
    cssCodeSplit: false,
    chunkSizeWarningLimit: 1200,
    rollupOptions: {
      output: {
        format: "iife",
        inlineDynamicImports: true,
        entryFileNames: "assets/viewer-[hash].js",
        assetFileNames: "assets/viewer-[hash][extname]",
      },
    },
  },
});
