// Thousands of long notes: a vault of 3,000 notes with bodies of several KB
// (one of 200 KB, one with Windows line endings), imported on a device with
// `heph import`, bootstrapped into a new page. Every note must arrive byte
// for byte, search must find words deep inside a long body, an edit in the
// page must reach the device intact, and a reload must open them all from
// IndexedDB with the hub down.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { browser, DESKTOP, device, eventually, freePort, hub, open, scratch, sleep, teardown } from "./harness.mjs";

const NOTES = 3000;
let dir, h, laptop, chrome, desk, page;
const notes = [];

/** A small deterministic generator, so a failure can be replayed. */
function random(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const WORDS = (
  "the of and to in a is that for it as was with be by on not he this are or his from at which but have an they you were her " +
  "sync hub device replica change merge conflict garden kitchen meeting budget draft review sprint invoice recipe travel " +
  "café naïve résumé Zürich Ελληνικά русский 日本語 中文 한국어 emoji 🙂 🚀 — – … « » “quoted” ‘single’"
).split(" ");

/** Markdown-ish text of about `size` characters: headings, lists, code, links, tables. */
function body(next, size) {
  const pick = () => WORDS[Math.floor(next() * WORDS.length)];
  const sentence = () => {
    const n = 6 + Math.floor(next() * 14);
    const s = Array.from({ length: n }, pick).join(" ");
    return s[0].toUpperCase() + s.slice(1) + ".";
  };
  const parts = [];
  let length = 0;
  while (length < size) {
    const r = next();
    let part;
    if (r < 0.1) part = `## ${Array.from(sentence()).slice(0, 40).join("")}`;
    else if (r < 0.25) part = Array.from({ length: 3 }, () => `- [${next() < 0.5 ? " " : "x"}] ${sentence()}`).join("\n");
    else if (r < 0.3) part = "```rust\nfn main() {\n\tprintln!(\"{}\", 1 + 2); // tab, braces, quotes\n}\n```";
    else if (r < 0.35) part = `| a | b |\n|---|---|\n| ${pick()} | ${pick()} |`;
    else if (r < 0.4) part = `See [the doc](https://example.org/${pick()}?q=1&r=2) and <${pick()}@example.org>.  `;
    else part = Array.from({ length: 2 + Math.floor(next() * 4) }, sentence).join(" ");
    parts.push(part);
    length += part.length + 2;
  }
  return parts.join("\n\n");
}

const sha = (s) => createHash("sha256").update(s, "utf8").digest("hex");

before(async () => {
  dir = scratch("vault");
  const port = await freePort();
  h = await hub(dir, port);
  laptop = await device(dir, "laptop", h.url);
  const next = random(20260127);
  const now = new Date().toISOString();
  for (let i = 0; i < NOTES; i++) {
    const id = (0x10000000 + i).toString(16).padStart(8, "0") + "0".repeat(23) + "1";
    let text = body(next, 2000 + Math.floor(next() * 6000));
    if (i === 7) text = body(next, 200_000).replace("\n\n", "\n\nThe word zanzibarquokka is only here.\n\n") + "\n\nThe very last line mentions platypusfinale.";
    if (i === 11) text = text.replace(/\n/g, "\r\n") + "\r\n";
    const title = `Note ${String(i).padStart(4, "0")} ${Array.from(text).slice(0, 24).join("").replace(/\s+/g, " ")}`;
    notes.push({ id, kind: "note", title, body: text, tags: i % 10 === 0 ? ["vault", `group${i % 7}`] : ["vault"], links: [], created: now, modified: now });
  }
  // The long note's searchable word sits near its end.
  const long = notes[7].body;
  assert.ok(long.indexOf("platypusfinale") > long.length - 100 && long.length > 190_000);
  const file = join(dir, "vault.json");
  writeFileSync(file, JSON.stringify(notes));
  const report = laptop.json("import", file);
  assert.equal(report.added, NOTES);
  chrome = await browser();
  desk = await chrome.newContext(DESKTOP);
});

after(() => teardown(chrome, laptop, h));

/** The page's notes as [id, title, sha256 of the body]. */
const pageNotes = (p) =>
  p.evaluate(async () => {
    const hex = async (s) => [...new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(s)))].map((b) => b.toString(16).padStart(2, "0")).join("");
    const out = [];
    for (const n of window.heph.replica.nodes.values()) if (n.kind === "note" && !n.deleted) out.push([n.id, n.title, await hex(n.body)]);
    return out;
  });

function assertAllThere(got, where) {
  assert.equal(got.length, notes.length, `${where}: every note is there`);
  const byId = new Map(got.map(([id, title, hash]) => [id, { title, hash }]));
  const wrong = notes.filter((n) => byId.get(n.id)?.title !== n.title || byId.get(n.id)?.hash !== sha(n.body)).map((n) => n.title);
  assert.deepEqual(wrong.slice(0, 5), [], `${where}: ${wrong.length} notes differ`);
}

test("3,000 long notes bootstrap into a new page, byte for byte", async () => {
  // Everything is on the hub before the page opens: a bootstrap, not live changes.
  await eventually("the hub to hold every note", async () => (await (await fetch(`${h.url}/healthz`)).json()).head >= NOTES, 120000);
  // And to have read them: it sends its reading of each note with its
  // bytes, and the page lists that (but the 200 KB note's reading does not
  // fit in a frame beside it: the page reads that one itself).
  const stale = async () => Number(/^heph_hub_stale_docs (\d+)/m.exec(await (await fetch(`${h.url}/metrics`)).text())?.[1] ?? NaN);
  await eventually("the hub to read every note", async () => (await stale()) === 0, 60000);
  let readings = 0;
  let unread = 0;
  desk.once("page", (p) =>
    p.on("websocket", (ws) =>
      ws.on("framereceived", ({ payload }) => {
        if (typeof payload !== "string" || !payload.startsWith('{"type":"snapshot"')) return;
        for (const doc of JSON.parse(payload).docs) doc.view ? readings++ : unread++;
      }),
    ),
  );
  page = await open(desk, h.url);
  await page.waitForSelector('#sync-status [data-state="online"]');
  await eventually("every note in the page", async () => (await page.evaluate(() => window.heph.replica.nodes.size)) >= NOTES && !(await page.evaluate(() => window.heph.status().catchingUp)), 90000);
  assertAllThere(await pageNotes(page), "after the bootstrap");
  assert.ok(readings >= NOTES - 10 && readings + unread === NOTES, `${readings} notes came with the hub's reading, ${unread} without`);
  // The long note, compared in full, and the one with CR LF line ends.
  for (const i of [7, 11]) {
    assert.equal(await page.evaluate((id) => window.heph.replica.nodes.get(id).body, notes[i].id), notes[i].body, `note ${i} byte for byte`);
  }
  await page.goto(`${h.url}/#/node/${notes[7].id}`);
  await page.waitForSelector("#f-body");
  assert.equal((await page.locator("#f-body").inputValue()).length, notes[7].body.length);
});

test("search finds words deep inside a long body", async () => {
  for (const word of ["zanzibarquokka", "platypusfinale"]) {
    await page.goto(`${h.url}/#/search?q=${word}`);
    await page.locator("main", { hasText: notes[7].title }).waitFor({ timeout: 15000 });
    assert.ok((await page.locator("main").innerText()).includes(notes[7].title), `${word} finds the long note`);
  }
});

test("notes edited in the page reach the device intact", async () => {
  for (const i of [7, 11, 1234]) {
    const n = notes[i];
    await page.goto(`${h.url}/#/node/${n.id}`);
    await page.waitForSelector("#f-body");
    // Looking at a note and leaving it changes nothing.
    await page.locator("#f-body").click();
    await page.locator("#f-title").focus();
    await sleep(600);
    assert.equal(await page.evaluate((id) => window.heph.replica.nodes.get(id).body, n.id), n.body, `note ${i} is unchanged by a look`);
    // Typing at its end adds just that.
    await page.locator("#f-body").focus();
    await page.keyboard.press("Control+End");
    await page.keyboard.type(" Added in the page.");
    await page.locator("#f-title").focus();
    n.body += " Added in the page.";
    await eventually(`note ${i} edited on the device`, () => laptop.json("show", n.id).body === n.body, 30000);
  }
  await eventually("no unsent edits", async () => (await page.locator('#sync-status [data-state="unsent"]').count()) === 0);
  // And the rest are as they were on the device.
  for (const i of [0, 7, 11, 1234, 2999]) assert.equal(laptop.json("show", notes[i].id).body, notes[i].body, `note ${i} on the device`);
});

test("a reload opens every note from IndexedDB while the hub is down", async () => {
  await h.stop();
  try {
    await page.reload();
    await page.waitForFunction(() => window.heph?.ready === true);
    await page.waitForSelector('#sync-status [data-state="offline"]');
    assertAllThere(await pageNotes(page), "after a reload with the hub down");
    assert.equal(await page.evaluate((id) => window.heph.replica.nodes.get(id).body, notes[7].id), notes[7].body);
  } finally {
    await h.start();
  }
});
