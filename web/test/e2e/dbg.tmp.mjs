import { browser, open, provider, hub, freePort, scratch, sleep } from "./harness.mjs";
const dir = scratch("dbg"); const port = await freePort();
const idp = await provider([`http://127.0.0.1:${port}/`]);
const h = await hub(dir, port, { issuer: idp.issuer });
const chrome = await browser(); const ctx = await chrome.newContext();
const page = await ctx.newPage();
page.on("console", (m) => console.log("console:", m.type(), m.text()));
page.on("pageerror", (e) => console.log("pageerror:", e.message));
page.on("framenavigated", (f) => f === page.mainFrame() && console.log("nav:", f.url()));
await page.goto(h.url); await page.waitForFunction(() => window.heph?.ready === true);
await page.goto(`${h.url}/#/login`); await sleep(300);
await page.click("#login");
await sleep(2000);
console.log(await page.locator("form").first().innerHTML());
try {
await page.fill('input[name="login"]', "owner"); await page.fill('input[name="password"]', "x");
await page.click('button[type="submit"]'); await sleep(3000);
console.log("url", page.url()); console.log(await page.locator("body").innerText());
console.log(await page.evaluate(() => JSON.stringify(window.heph?.status())));
} catch (e) { console.log("ERR", e.message); }
await chrome.close(); await h.stop(); idp.stop(); process.exit(0);
