// The browser app end to end: a real hub with OIDC, the real provider, a
// device with the `heph` CLI, and headless Chromium (Debian's package).
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { browser, device, eventually, freePort, hub, login, open, provider, scratch, shotPath, sleep } from "./harness.mjs";

let dir, port, idp, h, laptop, chrome, desk, page;

const ids = (list) => list.map((n) => n.title);
const deviceTitles = () => ids(laptop.json("ls", "status:any"));

before(async () => {
  dir = scratch("app");
  port = await freePort();
  idp = await provider([`http://127.0.0.1:${port}/`]);
  h = await hub(dir, port, { issuer: idp.issuer });
  chrome = await browser();
  desk = await chrome.newContext({ viewport: { width: 1280, height: 860 } });
});

after(async () => {
  await chrome?.close();
  await laptop?.stop();
  await h?.stop();
  idp?.stop();
});

test("signs in with Authorization Code + PKCE and syncs", async () => {
  page = await open(desk, h.url);
  // Auth is on: the page says so and keeps working locally.
  await page.waitForSelector('#sync-status [data-state="auth"]');
  await login(page);
  await page.waitForSelector('#sync-status [data-state="online"]');
  // The owner is now claimed; a device joins with an automation token.
  laptop = await device(dir, "laptop", h.url, { token: h.token("laptop"), issuer: idp.issuer });
});

test("quick add uses the CLI's syntax and reaches the device", async () => {
  await page.fill("#quick-add", "Call Ana due:fri +work pri:H");
  await page.press("#quick-add", "Enter");
  const row = page.locator("#task-list li.row", { hasText: "Call Ana" });
  await row.waitFor();
  assert.match(await row.innerText(), /\+work/);
  assert.match(await row.innerText(), /pri:H/);
  const task = await eventually("the device to receive the quick add", () => laptop.json("ls", "+work").find((n) => n.title === "Call Ana"));
  assert.equal(task.priority, "H");
  assert.deepEqual(task.tags, ["work"]);
  assert.ok(task.due, "due was set");
});

test("a CLI edit appears live in the open page", async () => {
  laptop.heph("add", "Buy", "milk", "+errand");
  await page.locator("#task-list li.row", { hasText: "Buy milk" }).waitFor({ timeout: 10000 });
  const id = laptop.json("ls", "+errand")[0].id;
  laptop.heph("modify", id.slice(0, 8), "Buy", "oat", "milk");
  await page.locator("#task-list li.row", { hasText: "Buy oat milk" }).waitFor({ timeout: 10000 });
});

test("quick add sets a UDA that a task carries, as heph add does", async () => {
  // A Taskwarrior task with a UDA, imported on the device.
  const file = join(dir, "estimate.json");
  writeFileSync(
    file,
    JSON.stringify([{ uuid: "11111111-2222-4333-8444-555555555555", description: "Estimated", status: "pending", entry: "20261101T000000Z", estimate: "3h" }]),
  );
  laptop.heph("import", file);
  await page.locator("#task-list li.row", { hasText: "Estimated" }).waitFor({ timeout: 10000 });
  await page.fill("#quick-add", "Write report estimate:2h");
  await page.press("#quick-add", "Enter");
  await page.locator("#task-list li.row", { hasText: "Write report" }).waitFor();
  const task = await eventually("the device to receive it", () => laptop.json("ls", "status:any").find((n) => n.title === "Write report"));
  assert.deepEqual(task.uda, { estimate: "2h" });
});

test("edits made offline are kept and sent on reconnect", async () => {
  await desk.setOffline(true);
  await page.waitForSelector('#sync-status [data-state="offline"]');
  // Done in one tap: the row leaves the pending list at once.
  await page.locator("#task-list li.row", { hasText: "Buy oat milk" }).locator("input.done").click();
  await page.locator("#task-list li.row", { hasText: "Buy oat milk" }).waitFor({ state: "detached" });
  await page.fill("#quick-add", "Written offline +plane");
  await page.press("#quick-add", "Enter");
  await page.waitForSelector('#sync-status [data-state="unsent"]');
  // Nothing reached the hub meanwhile.
  await sleep(500);
  assert.ok(!deviceTitles().includes("Written offline"));
  await desk.setOffline(false);
  await eventually("the offline edits on the device", () => {
    const all = laptop.json("ls", "status:any");
    const milk = all.find((n) => n.title === "Buy oat milk");
    return all.some((n) => n.title === "Written offline") && milk?.status === "done";
  });
  await page.waitForSelector('#sync-status [data-state="online"]');
  await eventually("no unsent edits", async () => (await page.locator('#sync-status [data-state="unsent"]').count()) === 0);
});

test("two browsers edit one task's body at once and converge", async () => {
  const other = await chrome.newContext({ viewport: { width: 390, height: 844 } });
  const page2 = await open(other, h.url);
  await login(page2);
  const task = laptop.json("ls", "+work").find((n) => n.title === "Call Ana");
  await Promise.all([page, page2].map((p) => p.goto(`${h.url}/#/node/${task.id}`)));
  await Promise.all([page, page2].map((p) => p.waitForSelector("#f-body")));
  // Both type before either hears from the other.
  await Promise.all([
    page.locator("#f-body").pressSequentially("Agenda from the desk.", { delay: 5 }),
    page2.locator("#f-body").pressSequentially("Number from the phone.", { delay: 5 }),
  ]);
  await Promise.all([page, page2].map((p) => p.locator("#f-title").focus()));
  const both = (text) => text.includes("Agenda from the desk.") && text.includes("Number from the phone.");
  await eventually("both pages to show both edits", async () => {
    const [a, b] = await Promise.all([page, page2].map((p) => p.locator("#f-body").inputValue()));
    return a === b && both(a);
  });
  await eventually("the device to hold both edits", () => both(laptop.json("show", task.id).body));
  // The phone got this task in its bootstrap and then edited it: a reload
  // shows the edited document, not the one the bootstrap stored.
  await page2.reload();
  await page2.waitForFunction(() => window.heph?.ready === true);
  await page2.waitForSelector("#f-body");
  assert.ok(both(await page2.locator("#f-body").inputValue()), "the reloaded phone shows the merged body");
  await page2.screenshot({ path: shotPath("phone-detail") });
  await page2.goto(`${h.url}/#/tasks`);
  await page2.locator("#task-list li.row").first().waitFor();
  await page2.screenshot({ path: shotPath("phone-tasks") });
  await other.close();
});

test("a conflict shows on its field and is resolved there", async () => {
  laptop.heph("add", "Conflict", "me");
  const id = (await eventually("the task on the device", () => laptop.json("ls").find((n) => n.title === "Conflict me"))).id;
  await page.goto(`${h.url}/#/node/${id}`);
  await page.waitForSelector("#f-title");
  await eventually("the page to have the task", async () => (await page.locator("#f-title").inputValue()) === "Conflict me");
  // The page and the laptop rename it without hearing from each other.
  await desk.setOffline(true);
  await page.waitForSelector('#sync-status [data-state="offline"]');
  await page.fill("#f-title", "Title from the page");
  await page.press("#f-title", "Tab");
  await page.waitForSelector('#sync-status [data-state="unsent"]');
  laptop.heph("modify", id.slice(0, 8), "Title", "from", "the", "laptop");
  await desk.setOffline(false);
  const conflict = page.locator('[data-conflict="title"]');
  await conflict.waitFor({ timeout: 15000 });
  await page.waitForSelector('#sync-status [data-state="conflicts"]');
  assert.match(await conflict.innerText(), /Title from the page/);
  assert.match(await conflict.innerText(), /Title from the laptop/);
  await page.screenshot({ path: shotPath("desktop-conflict") });
  await conflict.getByRole("button", { name: "Title from the laptop" }).click();
  await conflict.waitFor({ state: "detached" });
  await eventually("the device to see the conflict resolved", () => {
    const task = laptop.json("show", id);
    return task.title === "Title from the laptop" && laptop.json("conflicts").length === 0;
  });
});

test("a reload opens from IndexedDB while the hub is down", async () => {
  await page.goto(`${h.url}/#/tasks`);
  await page.locator("#task-list li.row", { hasText: "Call Ana" }).waitFor();
  await page.screenshot({ path: shotPath("desktop-tasks") });
  await h.stop();
  await page.reload();
  await page.waitForFunction(() => window.heph?.ready === true);
  await page.locator("#task-list li.row", { hasText: "Written offline" }).waitFor();
  await page.waitForSelector('#sync-status [data-state="offline"]');
  // Still usable: an edit is kept for later.
  await page.fill("#quick-add", "Added while the hub was down");
  await page.press("#quick-add", "Enter");
  await page.waitForSelector('#sync-status [data-state="unsent"]');
  await h.start();
  await eventually("the edit made while the hub was down reaches the device", () => deviceTitles().includes("Added while the hub was down"), 30000);
});

test("a hub replaced by an empty one gets back what only the page held", async () => {
  // The laptop is away; the page makes a task only it and the hub hold.
  await laptop.stop();
  await page.goto(`${h.url}/#/tasks`);
  await page.fill("#quick-add", "Only in the page +rescue");
  await page.press("#quick-add", "Enter");
  await eventually("no unsent edits", async () => (await page.locator('#sync-status [data-state="unsent"]').count()) === 0);
  // The hub is lost and replaced by an empty one (a new log, a new id).
  await h.stop();
  for (const f of readdirSync(dir)) if (f.startsWith("hub.db")) rmSync(join(dir, f), { force: true });
  await h.start();
  // The page reconciles with the new hub on its own; the laptop, back with
  // a token of the new hub, learns the task from it.
  laptop = await device(dir, "laptop", h.url, { token: h.token("laptop-again"), issuer: idp.issuer });
  await eventually("the laptop to get the page's task through the new hub", () => deviceTitles().includes("Only in the page"), 30000);
  // And nothing the page held is missing from the new hub.
  await eventually("every task of the page on the laptop", async () => {
    const theirs = new Set(deviceTitles());
    const ours = await page.evaluate(() => [...window.heph.replica.nodes.values()].filter((n) => n.kind === "task" && !n.deleted).map((n) => n.title));
    return ours.every((t) => theirs.has(t));
  }, 30000);
});

test("screenshots of the main views", async () => {
  for (const [name, hash] of [["desktop-notes", "#/notes"], ["desktop-journal", "#/journal"], ["desktop-search", "#/search?q=milk"]]) {
    await page.goto(`${h.url}/${hash}`);
    await page.waitForSelector("main section");
    await sleep(200);
    await page.screenshot({ path: shotPath(name) });
  }
});
