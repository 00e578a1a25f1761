// A hostile web page open in the owner's browser, next to the app: it tries
// the hub's API and RPC with and without credentials, reads /config, opens
// a WebSocket to /sync (cross-site WebSocket hijacking), posts a JSON-RPC
// form (CSRF), frames the app (clickjacking), opens it in a window and
// reaches into it, and looks for the app's storage. All against a hub with
// OIDC where the owner is signed in, and against an open hub on loopback
// whose only defence is the Origin check. Then a DNS-rebinding page (a
// foreign name that resolves to 127.0.0.1), and HTML and script payloads
// in a task and a note that must render as inert text.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { browser, CHROMIUM, DESKTOP, device, eventually, freePort, hub, login, open, provider, scratch, sleep, teardown } from "./harness.mjs";

let dir, idp, authed, openHub, laptop, local, chrome, desk, evil, evilUrl;

/** The hostile page: runs every attack on the hub named by `?hub=` and reports in `window.report`. */
const HOSTILE = String.raw`<!doctype html><meta charset="utf-8"><title>cute cats</title>
<body><h1>cute cats</h1>
<form id="csrf" method="post" enctype="text/plain" target="sink"><input id="csrf-field"></form>
<iframe name="sink" style="display:none"></iframe>
<script>
const hub = new URLSearchParams(location.search).get("hub");
const ws = hub.replace(/^http/, "ws") + "/sync";
const draft = JSON.parse(decodeURIComponent(new URLSearchParams(location.search).get("draft")));
const rpc = (method, params) => JSON.stringify({ jsonrpc: "2.0", id: 1, method, params });
const report = { read: [] };
window.report = report;
const tryFetch = async (name, url, init) => {
  try {
    const res = await fetch(url, init);
    const text = res.type === "opaque" ? "" : await res.text();
    report[name] = { ok: res.ok, status: res.status, type: res.type, text };
    if (text) report.read.push(name + ": " + text.slice(0, 200));
  } catch (e) {
    report[name] = { error: e.name };
  }
};
(async () => {
  // The API and RPC, as a simple request (no preflight) and with headers.
  await tryFetch("rpcExportWithCredentials", hub + "/rpc", { method: "POST", credentials: "include", headers: { "content-type": "text/plain" }, body: rpc("export") });
  await tryFetch("rpcExportWithoutCredentials", hub + "/rpc", { method: "POST", credentials: "omit", headers: { "content-type": "text/plain" }, body: rpc("export") });
  await tryFetch("rpcCreateNoCors", hub + "/rpc", { method: "POST", mode: "no-cors", credentials: "include", headers: { "content-type": "text/plain" }, body: rpc("create", { draft, edits: [], message: "pwned" }) });
  await tryFetch("rpcJsonWithBearer", hub + "/rpc", { method: "POST", credentials: "include", headers: { "content-type": "application/json", authorization: "Bearer guessed" }, body: rpc("export") });
  await tryFetch("metrics", hub + "/metrics", { credentials: "include" });
  await tryFetch("config", hub + "/config", { credentials: "include" });
  await tryFetch("app", hub + "/", { credentials: "include" });
  // A form posted across sites: its body is the JSON-RPC request.
  const body = rpc("create", { draft: { ...draft, title: draft.title + " by form" }, edits: [], message: "pwned" });
  const field = document.getElementById("csrf-field");
  field.name = body.slice(0, -1) + ',"x":"';
  field.value = '"}';
  const form = document.getElementById("csrf");
  form.action = hub + "/rpc";
  form.submit();
  // Cross-site WebSocket hijacking: a hello asks for everything.
  report.socket = await new Promise((done) => {
    const s = new WebSocket(ws);
    const seen = { opened: false, frames: [] };
    s.onopen = () => {
      seen.opened = true;
      s.send(JSON.stringify({ type: "hello", version: 3, origin: "0123456789abcdef0123456789abcdef", cursor: 0, bootstrap: true, known: null }));
    };
    s.onmessage = (e) => {
      seen.frames.push(String(e.data).slice(0, 200));
      report.read.push("socket: " + String(e.data).slice(0, 200));
    };
    s.onclose = (e) => done({ ...seen, code: e.code });
    setTimeout(() => done({ ...seen, code: "still open" }), 5000);
  });
  // The app in a window of ours: its document and storage stay out of reach.
  const w = window.open(hub + "/", "_blank");
  await new Promise((r) => setTimeout(r, 3000));
  report.popup = { opened: Boolean(w), closedToUs: !w || w.closed };
  for (const [name, f] of [["document", () => w.document.title], ["localStorage", () => w.localStorage.getItem("heph.tokens")], ["heph", () => String(w.heph)]]) {
    try {
      const v = f();
      report.popup[name] = { value: v };
      if (v !== undefined && v !== null && v !== "undefined") report.read.push("popup " + name + ": " + v);
    } catch (e) {
      report.popup[name] = { error: e.name };
    }
  }
  // Our own storage: the app's is not ours to see.
  report.storage = { localStorage: Object.keys(localStorage), indexedDB: (await indexedDB.databases()).map((d) => d.name) };
  report.done = true;
})();
</script>
<iframe id="framed" width="600" height="400"></iframe>
<script>document.getElementById("framed").src = new URLSearchParams(location.search).get("hub") + "/";</script>
`;

before(async () => {
  dir = scratch("hostile");
  const [authPort, openPort, evilPort] = await Promise.all([freePort(), freePort(), freePort()]);
  idp = await provider([`http://127.0.0.1:${authPort}/`]);
  authed = await hub(dir, authPort, { issuer: idp.issuer });
  const openDir = scratch("hostile-open");
  openHub = await hub(openDir, openPort);
  // The hostile site: another port of 127.0.0.1, so another origin.
  evil = createServer((req, res) => {
    res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
    res.end(HOSTILE);
  });
  await new Promise((r) => evil.listen(evilPort, "127.0.0.1", r));
  evilUrl = `http://127.0.0.1:${evilPort}/`;
  chrome = await browser();
  desk = await chrome.newContext(DESKTOP);
  // The owner: signed in to the hub with OIDC, and using the open one.
  const page = await open(desk, authed.url);
  await login(page);
  laptop = await device(dir, "laptop", authed.url, { token: authed.token("laptop"), issuer: idp.issuer });
  local = await device(openDir, "local", openHub.url);
  laptop.heph("add", "Secret plan", "+private");
  local.heph("add", "Local secret", "+private");
  await page.locator("#task-list li.row", { hasText: "Secret plan" }).waitFor();
  const openPage = await open(desk, openHub.url);
  await openPage.locator("#task-list li.row", { hasText: "Local secret" }).waitFor();
});

after(() => teardown(chrome, laptop, local, authed, openHub, evil, idp));

/** What the owner holds, as the device sees it. */
const titlesOf = (d) => d.json("ls", "status:any").map((n) => n.title).sort();

/** Runs the hostile page against `target` in the owner's browser; returns its report and console. */
async function attack(target, d, name) {
  const before = titlesOf(d);
  const template = d.json("ls", "status:any")[0];
  const draft = { ...d.json("show", template.id), id: randomBytes(16).toString("hex"), title: `Planted by ${name}`, tags: [] };
  const earlier = new Set(desk.pages());
  const page = await desk.newPage();
  const console = [];
  page.on("console", (m) => console.push(m.text()));
  const dialogs = [];
  page.on("dialog", (dl) => {
    dialogs.push(dl.message());
    void dl.dismiss();
  });
  await page.goto(`${evilUrl}?hub=${encodeURIComponent(target.url)}&draft=${encodeURIComponent(JSON.stringify(draft))}`);
  await page.waitForFunction(() => window.report?.done === true, null, { timeout: 30000 });
  const report = await page.evaluate(() => window.report);
  // The framed app: refused by the browser, so no app ever ran in it.
  const framed = page.frames().find((f) => f !== page.mainFrame() && f.name() !== "sink");
  const framedApp = await framed.evaluate(() => Boolean(window.heph)).catch(() => false);
  // The popup the page opened: the app ran there, unseen by the opener.
  for (const p of desk.pages()) if (p !== page && !earlier.has(p)) await p.close();
  await page.close();
  // The control: the same requests from a client that sends no Origin
  // (a device, a script) work, so only the hub's checks stopped the page.
  const control = await fetch(`${target.url}/rpc`, {
    method: "POST",
    headers: { "content-type": "application/json", ...(target === authed ? { authorization: `Bearer ${authed.token(`control-${name}`)}` } : {}) },
    body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "export" }),
  });
  // Give any planted write time to reach the device before looking.
  d.heph("sync");
  await sleep(500);
  return { report, console, dialogs, framedApp, control, before, after: titlesOf(d) };
}

function assertRepelled(name, r) {
  const { report } = r;
  assert.deepEqual(report.read, [], `${name}: the hostile page read nothing`);
  for (const k of ["rpcExportWithCredentials", "rpcExportWithoutCredentials", "rpcJsonWithBearer", "metrics", "config", "app"]) {
    assert.equal(report[k].error, "TypeError", `${name}: ${k} is refused to the page: ${JSON.stringify(report[k])}`);
  }
  assert.equal(report.rpcCreateNoCors.type, "opaque");
  assert.equal(report.socket.opened, false, `${name}: the WebSocket to /sync never opened`);
  assert.deepEqual(report.socket.frames, []);
  for (const k of ["document", "localStorage", "heph"]) {
    assert.ok(report.popup[k].error || report.popup[k].value == null || report.popup[k].value === "undefined", `${name}: the app's window is out of reach: ${k}`);
  }
  assert.deepEqual(report.storage, { localStorage: [], indexedDB: [] }, `${name}: the app's storage is not the page's`);
  assert.equal(r.framedApp, false, `${name}: the app did not run in the hostile page's frame`);
  assert.ok(r.console.some((m) => /frame-ancestors/.test(m)), `${name}: the browser refused the frame for frame-ancestors: ${r.console.join(" | ")}`);
  assert.deepEqual(r.dialogs, []);
  // Nothing planted: the owner's data is as it was.
  assert.deepEqual(r.after, r.before, `${name}: the owner's tasks are unchanged`);
  assert.equal(r.control.status, 200, `${name}: the same export works for a client the hub trusts`);
}

test("a hostile page cannot read or change a hub with sign-in, beside the signed-in app", async () => {
  const r = await attack(authed, laptop, "the hostile page");
  assertRepelled("OIDC hub", r);
  assert.equal(r.report.popup.closedToUs, true, "the app's window is cut off from its opener (Cross-Origin-Opener-Policy)");
  // The app still works, with the same token.
  const page = desk.pages().find((p) => p.url().startsWith(authed.url));
  await page.fill("#quick-add", "Still mine");
  await page.press("#quick-add", "Enter");
  await eventually("the app's write on the device", () => titlesOf(laptop).includes("Still mine"));
});

test("a hostile page cannot read or change an open hub on loopback", async () => {
  const r = await attack(openHub, local, "the hostile page");
  assertRepelled("open hub", r);
  assert.match(await r.control.text(), /Local secret/, "the open hub answers a client without Origin");
});

test("a DNS-rebinding page (a foreign name for 127.0.0.1) gets nothing from the open hub", async () => {
  const port = new URL(openHub.url).port;
  const rebinding = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", `--host-resolver-rules=MAP rebind.test 127.0.0.1`],
  });
  try {
    const page = await rebinding.newPage();
    const res = await page.goto(`http://rebind.test:${port}/`);
    assert.equal(res.status(), 403, "the hub refuses a Host it does not answer to");
    // The page's script is now same-origin with the hub's address.
    const got = await page.evaluate(async () => {
      const out = {};
      for (const path of ["/rpc", "/config", "/healthz"]) {
        const r = await fetch(path, { method: path === "/rpc" ? "POST" : "GET", body: path === "/rpc" ? '{"jsonrpc":"2.0","id":1,"method":"export"}' : undefined });
        out[path] = { status: r.status, text: await r.text() };
      }
      out.socket = await new Promise((done) => {
        const s = new WebSocket(`ws://${location.host}/sync`);
        s.onopen = () => done("opened");
        s.onclose = (e) => done(e.code);
      });
      return out;
    });
    for (const path of ["/rpc", "/config", "/healthz"]) {
      assert.equal(got[path].status, 403, `${path}: ${JSON.stringify(got[path])}`);
      assert.doesNotMatch(got[path].text, /Local secret/);
    }
    assert.notEqual(got.socket, "opened");
  } finally {
    await rebinding.close();
  }
});

test("HTML and script in a task and a note render as inert text", async () => {
  const payloads = {
    title: `<img src=x onerror="window.__pwned='title';alert('title')"><script>window.__pwned='title-script'</script>`,
    body: `<script>window.__pwned='body';alert('body')</script>\n<a href="javascript:window.__pwned='link'">click</a>\n[md](javascript:alert('md'))\n<iframe src="javascript:alert('frame')"></iframe>\n<svg onload="window.__pwned='svg'"></svg>`,
    tag: `<b>x</b>`,
    project: `"><img src=x onerror=alert('project')>`,
  };
  const template = laptop.json("ls", "status:any")[0];
  const base = laptop.json("show", template.id);
  const task = {
    ...base,
    id: randomBytes(16).toString("hex"),
    title: payloads.title,
    body: payloads.body,
    tags: ["xss", payloads.tag],
    project: payloads.project,
    annotations: [{ entry: base.created, description: `<img src=x onerror="window.__pwned='annotation'">` }],
  };
  const note = { ...task, id: randomBytes(16).toString("hex"), kind: "note", title: `Note ${payloads.title}`, project: undefined, status: undefined, priority: undefined, annotations: [] };
  for (const k of Object.keys(note)) if (note[k] === undefined) delete note[k];
  const file = join(dir, "payloads.json");
  writeFileSync(file, JSON.stringify([task, note]));
  laptop.heph("import", file);
  const page = desk.pages().find((p) => p.url().startsWith(authed.url));
  const dialogs = [];
  page.on("dialog", (dl) => {
    dialogs.push(dl.message());
    void dl.dismiss();
  });
  const inert = async (where) => {
    assert.equal(await page.evaluate(() => window.__pwned), undefined, `${where}: no payload ran`);
    assert.equal(await page.locator('main img[src="x"], main svg[onload], main iframe, main script, main a[href^="javascript:"]').count(), 0, `${where}: no payload became an element`);
    assert.deepEqual(dialogs, [], `${where}: no dialog`);
  };
  await page.goto(`${authed.url}/#/tasks`);
  const row = page.locator("#task-list li.row", { hasText: "<img src=x onerror=" });
  await row.waitFor({ timeout: 15000 });
  assert.ok((await row.innerText()).includes(payloads.title), "the title shows as text in the list");
  await inert("task list");
  await page.goto(`${authed.url}/#/node/${task.id}`);
  await page.waitForSelector("#f-body");
  assert.equal(await page.locator("#f-title").inputValue(), payloads.title);
  assert.equal(await page.locator("#f-body").inputValue(), payloads.body);
  assert.ok((await page.locator("main").innerText()).includes("window.__pwned='annotation'"), "the annotation shows as text");
  await inert("task detail");
  await page.goto(`${authed.url}/#/notes`);
  await page.locator("main", { hasText: `Note <img` }).waitFor();
  await inert("note list");
  await page.goto(`${authed.url}/#/node/${note.id}`);
  await page.waitForSelector("#f-body");
  assert.equal(await page.locator("#f-body").inputValue(), payloads.body);
  await inert("note detail");
  await page.goto(`${authed.url}/#/search?q=onerror`);
  await page.locator("main", { hasText: "<img src=x" }).first().waitFor();
  await inert("search");
  // Nothing was changed by showing them.
  await sleep(500);
  assert.equal(laptop.json("show", task.id).title, payloads.title);
  assert.equal(laptop.json("show", note.id).body, payloads.body);
});
