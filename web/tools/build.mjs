// Builds the app into dist/: hashed assets under dist/assets/ (cached for
// a year by the hub), index.html and sw.js at the root (never cached), and
// a service worker whose version is the digest of everything it caches, so
// a new build replaces the old shell as one unit.
import { build } from "esbuild";
import { createHash } from "node:crypto";
import { mkdir, readFile, rm, writeFile, readdir } from "node:fs/promises";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
// `--out DIR` builds elsewhere (the hub's build script builds into its own
// OUT_DIR, so concurrent cargo builds never share a folder).
const outAt = process.argv.indexOf("--out");
const dist = outAt > 0 && process.argv[outAt + 1] ? process.argv[outAt + 1] : join(root, "dist");
const dev = process.argv.includes("--dev");

await rm(dist, { recursive: true, force: true });
await mkdir(join(dist, "assets"), { recursive: true });

const app = await build({
  entryPoints: {
    app: join(root, "src/main.ts"),
    reader: join(root, "src/reader.worker.ts"),
    style: join(root, "src/style.css"),
  },
  bundle: true,
  format: "esm",
  target: "es2022",
  minify: !dev,
  sourcemap: dev ? "linked" : false,
  outdir: join(dist, "assets"),
  entryNames: "[name]-[hash]",
  assetNames: "[name]-[hash]",
  loader: { ".wasm": "file" },
  publicPath: "/assets",
  metafile: true,
  logLevel: "warning",
});

const assets = (await readdir(join(dist, "assets"))).map((f) => `assets/${f}`).sort();
const find = (prefix, ext) => {
  const hit = assets.find((a) => a.startsWith(`assets/${prefix}-`) && a.endsWith(ext));
  if (!hit) throw new Error(`build: no ${prefix}*${ext} among ${assets.join(", ")}`);
  return hit;
};
const js = find("app", ".js");
const css = find("style", ".css");
const reader = find("reader", ".js");

const html = (await readFile(join(root, "src/index.html"), "utf8"))
  .replace("%APP_JS%", `/${js}`)
  .replace("%APP_CSS%", `/${css}`)
  .replace("%READER_JS%", `/${reader}`);
await writeFile(join(dist, "index.html"), html);
const icon = await readFile(join(root, "src/icon.svg"));
await writeFile(join(dist, "icon.svg"), icon);
await writeFile(join(dist, "manifest.webmanifest"), await readFile(join(root, "src/manifest.webmanifest")));

// The shell the service worker keeps: the page, its assets, the icon.
const shell = ["/", "/index.html", "/icon.svg", "/manifest.webmanifest", ...assets.filter((a) => !a.endsWith(".map")).map((a) => `/${a}`)];
const digest = createHash("sha256");
for (const file of ["index.html", ...assets]) digest.update(file).update(await readFile(join(dist, file)));
const version = digest.digest("hex").slice(0, 16);

await build({
  entryPoints: [join(root, "src/sw.ts")],
  bundle: true,
  format: "iife",
  target: "es2022",
  minify: !dev,
  outfile: join(dist, "sw.js"),
  define: { __SHELL__: JSON.stringify(shell), __VERSION__: JSON.stringify(version) },
  logLevel: "warning",
});
console.log(`web: built ${assets.length} assets, shell version ${version}`);
