// Silent token refresh: the provider issues access tokens that live 15 s
// (ACCESS_TTL) and the hub allows no clock skew (--oidc-leeway 0), so the
// page can keep syncing only by renewing its token with the refresh token.
// Then the refresh token is revoked: the page must say it needs a sign-in
// and keep what it could not send until the owner signs in again.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { browser, DESKTOP, device, eventually, freePort, hub, login, open, provider, scratch, sleep, teardown } from "./harness.mjs";

const TTL = 15;
let dir, port, idp, discovery, h, laptop, chrome, desk, page;
/** Refresh-token grants the page sent to the provider (seen on the wire). */
const refreshes = [];

const titles = () => laptop.json("ls", "status:any").map((n) => n.title);
const stored = () => page.evaluate(() => JSON.parse(localStorage.getItem("heph.tokens") ?? "null"));

before(async () => {
  dir = scratch("refresh");
  port = await freePort();
  idp = await provider([`http://127.0.0.1:${port}/`], { ACCESS_TTL: String(TTL) });
  discovery = await (await fetch(`${idp.issuer}/.well-known/openid-configuration`)).json();
  h = await hub(dir, port, { issuer: idp.issuer, args: ["--oidc-leeway", "0"] });
  chrome = await browser();
  desk = await chrome.newContext(DESKTOP);
  desk.on("request", (req) => {
    if (req.method() === "POST" && req.url() === discovery.token_endpoint && /grant_type=refresh_token/.test(req.postData() ?? "")) {
      refreshes.push(Date.now());
    }
  });
});

after(() => teardown(chrome, laptop, h, idp));

/** Records, in the page, every time the status line asks for a sign-in. */
async function watchForSignIn(p) {
  await p.evaluate(() => {
    window.__signInAsked = 0;
    const check = () => {
      if (document.querySelector('#sync-status [data-state="auth"]')) window.__signInAsked++;
    };
    new MutationObserver(check).observe(document.getElementById("sync-status"), { subtree: true, childList: true, attributes: true });
  });
}

test("the access token expires while the page is open and it keeps syncing without a sign-in", async () => {
  page = await open(desk, h.url);
  await login(page);
  laptop = await device(dir, "laptop", h.url, { token: h.token("laptop"), issuer: idp.issuer });
  await watchForSignIn(page);
  const first = await stored();
  assert.ok(first?.refresh, "the provider gave the page a refresh token");
  assert.ok(first.expires <= Date.now() + TTL * 1000, "the access token is short-lived");
  // Past the first token's expiry and through at least two renewals.
  await eventually("two silent refreshes past the first token's expiry", () => Date.now() > first.expires + 2000 && refreshes.length >= 2, 60000);
  const now = await stored();
  assert.notEqual(now.access, first.access, "the page holds a new access token");
  assert.ok(now.expires > first.expires);
  // Both directions still work on the renewed session.
  laptop.heph("add", "Written", "on", "the", "laptop", "after", "expiry");
  await page.locator("#task-list li.row", { hasText: "Written on the laptop after expiry" }).waitFor({ timeout: 15000 });
  await page.fill("#quick-add", "Written in the page after expiry +renewed");
  await page.press("#quick-add", "Enter");
  await eventually("the page's edit on the device", () => titles().includes("Written in the page after expiry"));
  assert.equal(await page.evaluate(() => window.__signInAsked), 0, "the page never asked for a sign-in");
  assert.equal(await page.locator("#banner .warn").count(), 0, "no warning banner");
  assert.equal(await page.evaluate(() => window.heph.status().phase), "online");
});

test("a revoked refresh token asks for a sign-in and keeps the unsent edits", async () => {
  const tokens = await stored();
  const res = await fetch(discovery.revocation_endpoint, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ token: tokens.refresh, token_type_hint: "refresh_token", client_id: "heph-web" }),
  });
  assert.equal(res.status, 200, "the provider revoked the refresh token");
  // The access token still works until it expires; then no renewal can
  // replace it and the page says so.
  await page.waitForSelector('#sync-status [data-state="auth"]', { timeout: 60000 });
  await page.waitForSelector("#banner .warn", { timeout: 5000 });
  assert.match(await page.locator("#banner").innerText(), /sign in/i);
  // Edits made meanwhile stay in the page.
  await page.goto(`${h.url}/#/tasks`);
  await page.fill("#quick-add", "Written while signed out +kept");
  await page.press("#quick-add", "Enter");
  await page.locator("#task-list li.row", { hasText: "Written while signed out" }).waitFor();
  const laptopTask = laptop.json("ls").find((n) => n.title === "Written on the laptop after expiry");
  await page.goto(`${h.url}/#/node/${laptopTask.id}`);
  await page.waitForSelector("#f-body");
  await page.locator("#f-body").fill("A body typed while signed out.");
  await page.locator("#f-title").focus();
  await page.waitForSelector('#sync-status [data-state="unsent"]');
  await sleep(1000);
  assert.ok(!titles().includes("Written while signed out"), "nothing reached the hub without a token");
  assert.equal(laptop.json("show", laptopTask.id).body, "");
  // A reload keeps them too (they live in IndexedDB, not in memory).
  await page.reload();
  await page.waitForFunction(() => window.heph?.ready === true);
  await page.waitForSelector('#sync-status [data-state="unsent"]');
  // Signing in again sends them.
  await login(page);
  await eventually("the edits made while signed out on the device", () =>
    titles().includes("Written while signed out") && laptop.json("show", laptopTask.id).body === "A body typed while signed out.",
  30000);
  await eventually("no unsent edits", async () => (await page.locator('#sync-status [data-state="unsent"]').count()) === 0);
  // And every write made anywhere is still there, on both sides.
  const expected = ["Written on the laptop after expiry", "Written in the page after expiry", "Written while signed out"];
  assert.deepEqual(expected.filter((t) => !titles().includes(t)), []);
  const inPage = await page.evaluate(() => [...window.heph.replica.nodes.values()].map((n) => n.title));
  assert.deepEqual(expected.filter((t) => !inPage.includes(t)), []);
});

test("a provider that stalls while the token expires does not sign the page out", async () => {
  await page.goto(`${h.url}/#/tasks`);
  // Just after a renewal, the provider stops answering (it is not gone:
  // what was sent to it is answered once it resumes).
  const n = refreshes.length;
  await eventually("a renewal", () => refreshes.length > n, 30000);
  await sleep(500);
  const held = await stored();
  process.kill(idp.child.pid, "SIGSTOP");
  try {
    // The token runs out meanwhile and the hub ends the session.
    await eventually("the hub to end the session at the token's expiry", async () => Date.now() > held.expires + 3000 && (await page.evaluate(() => window.heph.status().phase)) !== "online", 30000);
  } finally {
    process.kill(idp.child.pid, "SIGCONT");
  }
  // The renewal that was waiting goes through: the page is back, signed in.
  await page.waitForFunction(() => window.heph.status()?.phase === "online", null, { timeout: 30000 });
  assert.ok((await stored())?.refresh, "the page still holds its session");
  laptop.heph("add", "Written on the laptop after the stall");
  await page.locator("#task-list li.row", { hasText: "Written on the laptop after the stall" }).waitFor({ timeout: 15000 });
  await page.fill("#quick-add", "Written in the page after the stall");
  await page.press("#quick-add", "Enter");
  await eventually("the page's edit on the device", () => titles().includes("Written in the page after the stall"));
});
