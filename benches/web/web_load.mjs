// The browser app under load, in headless Chromium (Debian's package):
//
//   1. first load: 10,000 tasks bootstrapped over /sync (snapshots) until
//      the list shows all of them;
//   2. a reload of the same list from IndexedDB;
//   3. a `heph` write on a device reaching the open page through the
//      device's daemon and the hub (p50 and p99 over N writes).
//
//   node benches/web/web_load.mjs [--tasks 10000] [--writes 100]
//
// HEPHD and HEPH name release binaries (default: target/release). Prints
// one JSON line per measurement and a summary table.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { browser, device, eventually, freePort, hub, repo, scratch } from "../../web/test/e2e/harness.mjs";

const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const TASKS = arg("tasks", 10000);
const WRITES = arg("writes", 100);
process.env.HEPHD ??= join(repo, "target/release/hephd");
process.env.HEPH ??= join(repo, "target/release/heph");

const dir = scratch("bench");
const port = await freePort();
const h = await hub(dir, port);
const laptop = await device(dir, "laptop", h.url);

// A realistic list: projects, tags, due dates, priorities, annotations.
const now = Date.now();
const tw = (t) => new Date(t).toISOString().replace(/[-:]/g, "").replace(/\.\d+/, "");
const tasks = Array.from({ length: TASKS }, (_, i) => ({
  uuid: crypto.randomUUID(),
  description: `Task ${i}: ${["call", "write", "review", "fix", "plan"][i % 5]} the ${["report", "garden", "invoice", "roof", "slides"][i % 7 % 5]}`,
  status: "pending",
  entry: tw(now - i * 60_000),
  modified: tw(now - i * 30_000),
  ...(i % 3 === 0 ? { due: tw(now + (i % 40) * 86_400_000) } : {}),
  ...(i % 4 === 0 ? { project: ["home", "work.q4", "garden"][i % 3] } : {}),
  ...(i % 2 === 0 ? { tags: [["work", "home", "errand", "phone"][i % 4]] } : {}),
  ...(i % 5 === 0 ? { priority: ["H", "M", "L"][i % 3] } : {}),
  ...(i % 10 === 0 ? { annotations: [{ entry: tw(now - i * 1000), description: "a note on this task" }] } : {}),
}));
writeFileSync(join(dir, "tasks.json"), JSON.stringify(tasks));
let t = performance.now();
laptop.heph("import", join(dir, "tasks.json"));
await eventually("the device to push every task to the hub", () => laptop.json("sync", "--status").pending_push === 0, 300_000);
laptop.heph("sync");
console.error(`preloaded ${TASKS} tasks in ${((performance.now() - t) / 1000).toFixed(1)} s`);
// The hub reads what it received in the background (indexes, and the
// readings it sends a bootstrapping page); a hub that has been up for more
// than a moment is there.
t = performance.now();
const stale = async () => {
  const text = await (await fetch(`${h.url}/metrics`)).text();
  return Number(/^heph_hub_stale_docs (\d+)/m.exec(text)?.[1] ?? NaN);
};
await eventually("the hub to read every document", async () => (await stale()) === 0, 300_000);
console.error(`the hub had read every document ${((performance.now() - t) / 1000).toFixed(1)} s later`);

const chrome = await browser();
const context = await chrome.newContext({ viewport: { width: 1280, height: 860 } });
const page = await context.newPage();
const listed = (n) => page.waitForFunction((n) => document.querySelector("#task-list") && document.querySelector(".count")?.textContent === `${n} tasks`, n, { timeout: 120_000, polling: 10 });

const results = [];
const record = (r) => {
  results.push(r);
  console.log(JSON.stringify(r));
};

t = performance.now();
await page.goto(h.url);
await listed(TASKS);
record({ phase: "first_load", tasks: TASKS, ms: Math.round(performance.now() - t) });

// Let the service worker finish installing, so the reload is the real one.
await page.waitForFunction(() => navigator.serviceWorker?.controller !== null || true);
t = performance.now();
await page.reload();
await listed(TASKS);
record({ phase: "reload_from_indexeddb", tasks: TASKS, ms: Math.round(performance.now() - t) });

// CLI write -> device daemon -> hub -> page.
await page.evaluate(() => {
  window.__seen = {};
  window.heph.replica.on((ids) => {
    const at = performance.timeOrigin + performance.now();
    for (const id of ids) {
      const title = window.heph.replica.nodes.get(id)?.title;
      if (title?.startsWith("probe ") && !(title in window.__seen)) window.__seen[title] = at;
    }
  });
});
const lat = [];
for (let i = 0; i < WRITES; i++) {
  const title = `probe ${i}`;
  const sent = performance.timeOrigin + performance.now();
  laptop.heph("add", title);
  const at = await eventually(`the page to see ${title}`, () => page.evaluate((t) => window.__seen[t], title), 30_000);
  lat.push(at - sent);
}
lat.sort((a, b) => a - b);
const q = (p) => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))];
record({ phase: "cli_to_page", writes: WRITES, p50_ms: +q(0.5).toFixed(1), p99_ms: +q(0.99).toFixed(1), max_ms: +lat.at(-1).toFixed(1) });

await chrome.close();
await laptop.stop();
await h.stop();
console.error("\n| measurement | result | target |\n|---|---|---|");
for (const r of results) {
  if (r.phase === "first_load") console.error(`| first load, ${r.tasks} tasks over /sync | ${(r.ms / 1000).toFixed(2)} s | < 3 s |`);
  if (r.phase === "reload_from_indexeddb") console.error(`| reload from IndexedDB, ${r.tasks} tasks | ${(r.ms / 1000).toFixed(2)} s | < 1 s |`);
  if (r.phase === "cli_to_page") console.error(`| heph write → page, p50 / p99 (${r.writes} writes) | ${r.p50_ms} / ${r.p99_ms} ms | p50 < 250 ms |`);
}
process.exit(0);
