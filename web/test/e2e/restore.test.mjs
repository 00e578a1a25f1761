// A hub restored from an older copy of its store: the page and two devices
// synced writes the copy lacks. After the restore the hub greets them with
// `welcome.diverged`, and each gives back what it lacks; every write made
// anywhere, before or after the copy was taken, must end up everywhere.
// The hub is open (no authentication, on loopback): the restore is the
// point here, and app.test.mjs covers signing in.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { copyFileSync } from "node:fs";
import { join } from "node:path";
import { browser, DESKTOP, device, eventually, freePort, hub, open, scratch, teardown } from "./harness.mjs";

let dir, port, h, laptop, phone, chrome, desk, page;
/** The `welcome` frames the page received, in order. */
const welcomes = [];

before(async () => {
  dir = scratch("restore");
  port = await freePort();
  h = await hub(dir, port);
  chrome = await browser();
  desk = await chrome.newContext(DESKTOP);
  page = await open(desk, h.url);
  page.on("websocket", (ws) =>
    ws.on("framereceived", ({ payload }) => {
      const frame = JSON.parse(String(payload));
      if (frame.type === "welcome") welcomes.push(frame);
    }),
  );
  await page.waitForSelector('#sync-status [data-state="online"]');
  laptop = await device(dir, "laptop", h.url);
  phone = await device(dir, "phone", h.url);
});

after(() => teardown(chrome, laptop, phone, h));

/** Every write of the test, as each replica must show it. */
const expected = [];

/** The nodes of a device by title. */
const byTitle = (d) => new Map(JSON.parse(d.heph("export")).map((n) => [n.title, n]));
const pageNodes = () => page.evaluate(() => [...window.heph.replica.nodes.values()]);

/** What is missing or wrong in `nodes` (by title), against `expected`. */
function missing(nodes) {
  const map = nodes instanceof Map ? nodes : new Map(nodes.map((n) => [n.title, n]));
  return expected.filter(({ title, check }) => {
    const n = map.get(title);
    return !n || (check && !check(n));
  }).map((e) => e.title);
}

async function everywhere(what, ms = 30000) {
  await eventually(`${what} on the page`, async () => missing(await pageNodes()).length === 0, ms);
  for (const [name, d] of [["laptop", laptop], ["phone", phone]]) {
    await eventually(`${what} on the ${name}`, () => missing(byTitle(d)).length === 0, ms).catch((e) => {
      throw new Error(`${e.message}; missing ${JSON.stringify(missing(byTitle(d)))}; sync ${JSON.stringify(d.json("sync", "--status"))}`);
    });
  }
  await eventually("no unsent edits in the page", async () => (await page.locator('#sync-status [data-state="unsent"]').count()) === 0, ms);
}

async function quickAdd(line) {
  await page.goto(`${h.url}/#/tasks`);
  await page.fill("#quick-add", line);
  await page.press("#quick-add", "Enter");
  await page.locator("#task-list li.row", { hasText: line.replace(/ \+\w+$/, "") }).waitFor();
}

async function typeBody(id, text) {
  await page.goto(`${h.url}/#/node/${id}`);
  await page.waitForSelector("#f-body");
  await page.locator("#f-body").fill(text);
  await page.locator("#f-title").focus();
  await eventually("the body edit in the page's replica", () => page.evaluate(([id, text]) => window.heph.replica.nodes.get(id)?.body === text, [id, text]));
}

test("a hub restored from an older copy gets back every write made after the copy", async () => {
  // Before the copy: one task from the page, one from the laptop.
  await quickAdd("Page before the copy");
  laptop.heph("add", "Laptop before the copy");
  expected.push({ title: "Page before the copy" }, { title: "Laptop before the copy" });
  await everywhere("the first writes");

  // The copy, taken while the hub is stopped.
  await h.stop();
  const copy = join(dir, "hub.db.older");
  copyFileSync(h.db, copy);
  await h.start();
  await page.waitForSelector('#sync-status [data-state="online"]', { timeout: 30000 });

  // After the copy: new tasks and edits of old ones, from all three.
  const pageBefore = byTitle(laptop).get("Page before the copy");
  const laptopBefore = byTitle(laptop).get("Laptop before the copy");
  await quickAdd("Page after the copy +later");
  await typeBody(laptopBefore.id, "Body typed in the page after the copy.");
  laptop.heph("add", "Laptop after the copy");
  laptop.heph("modify", pageBefore.id.slice(0, 8), "+fromlaptop");
  phone.heph("add", "Phone after the copy");
  phone.heph("modify", laptopBefore.id.slice(0, 8), "pri:H");
  expected.push(
    { title: "Page after the copy", check: (n) => n.tags.includes("later") },
    { title: "Laptop after the copy" },
    { title: "Phone after the copy" },
  );
  expected.find((e) => e.title === "Page before the copy").check = (n) => n.tags.includes("fromlaptop");
  expected.find((e) => e.title === "Laptop before the copy").check = (n) =>
    n.body === "Body typed in the page after the copy." && n.priority === "H";
  await everywhere("the writes made after the copy");
  const welcomesBefore = welcomes.length;
  assert.ok(welcomes.every((w) => !w.diverged), "no divergence before the restore");

  // The restore: the older copy replaces the store.
  await h.stop();
  copyFileSync(copy, h.db);
  await h.start();
  const restored = await (await fetch(`${h.url}/healthz`)).json();
  assert.ok(restored.head > 0, "the hub holds the older copy");
  // A write right after the restore, while the others reconcile.
  laptop.heph("add", "Laptop after the restore");
  expected.push({ title: "Laptop after the restore" });

  await eventually("the page to be told the hub diverged", () => welcomes.slice(welcomesBefore).some((w) => w.diverged === true), 30000);
  await everywhere("every write after the restore", 60000);
  // The hub holds them too: a new device learns all of it from the hub alone.
  const tablet = await device(dir, "tablet", h.url);
  try {
    await eventually("every write on a new device", () => missing(byTitle(tablet)).length === 0, 30000);
    // A page edit after the restore still travels.
    await quickAdd("Page after the restore");
    expected.push({ title: "Page after the restore" });
    await eventually("the page's new task on the new device", () => missing(byTitle(tablet)).length === 0, 30000);
    await everywhere("the last write");
    // Nothing was duplicated by the reconciliation.
    const titles = JSON.parse(tablet.heph("export")).map((n) => n.title);
    assert.equal(titles.length, new Set(titles).size, `no duplicates: ${titles.join(", ")}`);
    assert.equal(titles.length, expected.length);
  } finally {
    await tablet.stop();
  }
});
