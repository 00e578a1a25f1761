// Real parts for the end-to-end tests: the OpenID provider (npm
// oidc-provider, hub/tests/oidc), a hub (`hephd --mode server` with OIDC),
// device daemons with the `heph` CLI, and Debian's Chromium driven by
// playwright-core. Nothing is mocked.
//
// HEPHD and HEPH name the binaries (the cargo test that runs these sets
// them); OUT is where screenshots and logs go.
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, mkdirSync, writeFileSync, openSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { createInterface } from "node:readline";
import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
export const repo = resolve(here, "../../..");
export const OUT = process.env.OUT ?? join(repo, "web/test-output");
const HEPHD = process.env.HEPHD ?? join(repo, "target/debug/hephd");
const HEPH = process.env.HEPH ?? join(repo, "target/debug/heph");
export const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";

export function freePort() {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.once("error", fail);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => ok(port));
    });
  });
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export async function eventually(what, f, ms = 15000) {
  const end = Date.now() + ms;
  let last;
  while (Date.now() < end) {
    try {
      const v = await f();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    await sleep(50);
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what}${last ? `: ${last.message}` : ""}`);
}

/** A scratch folder removed at exit. */
export function scratch(name) {
  const dir = mkdtempSync(join(tmpdir(), `heph-web-${name}-`));
  process.on("exit", () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const children = new Set();
process.on("exit", () => {
  for (const c of children) c.kill("SIGKILL");
});

function track(child) {
  children.add(child);
  child.on("exit", () => children.delete(child));
  return child;
}

/** Stops a child with SIGTERM and waits for it; at once if it already exited. */
async function stopped(child) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const gone = new Promise((r) => child.once("exit", r));
  child.kill("SIGTERM");
  await gone;
}

/** The OpenID provider, with the browser client allowed to return to `redirects`. */
export async function provider(redirects, env = {}) {
  const child = track(
    spawn("node", [join(repo, "hub/tests/oidc/provider.mjs")], {
      env: { ...process.env, WEB_REDIRECT_URIS: redirects.join(","), ...env },
      stdio: ["pipe", "pipe", "inherit"],
    }),
  );
  const line = await new Promise((ok, fail) => {
    const rl = createInterface({ input: child.stdout });
    rl.once("line", ok);
    child.once("exit", (code) => fail(new Error(`the OpenID provider exited with ${code}`)));
  });
  return { ...JSON.parse(line), child, stop: () => child.kill("SIGTERM") };
}

/** `hephd --mode server` on `port`; with `issuer`, authentication is on. */
export async function hub(dir, port, { issuer, args = [] } = {}) {
  const db = join(dir, "hub.db");
  const log = openSync(join(dir, "hub.log"), "a");
  // WEB_ROOT serves a built app from disk instead of the one in hephd.
  if (process.env.WEB_ROOT) args = ["--web-root", process.env.WEB_ROOT, ...args];
  const auth = issuer ? ["--oidc-issuer", issuer, "--oidc-audience", "heph", "--oidc-client-id", "heph-web"] : [];
  const start = () =>
    track(
      spawn(HEPHD, ["--mode", "server", "--db", db, "--http-addr", `127.0.0.1:${port}`, ...auth, ...args], {
        env: { ...clean(process.env), HEPH_LOG: "info" },
        stdio: ["ignore", "ignore", log],
      }),
    );
  const h = { db, port, url: `http://127.0.0.1:${port}`, child: start() };
  const up = () => eventually("the hub's /healthz", async () => (await fetch(`${h.url}/healthz`)).ok);
  await up();
  h.stop = () => stopped(h.child);
  h.start = async () => {
    h.child = start();
    await up();
  };
  /** A write-scoped automation token (`hephd token create`). */
  h.token = (name) =>
    JSON.parse(
      execFileSync(HEPHD, ["token", "create", "--name", name, "--scope", "write", "--json", "--db", db], { env: clean(process.env) }).toString(),
    ).token;
  return h;
}

/** The environment without HEPH_* settings from the caller's shell. */
function clean(env) {
  return Object.fromEntries(Object.entries(env).filter(([k]) => !k.startsWith("HEPH_")));
}

/**
 * A device: its store, `hephd --mode local` syncing it with `hubUrl`, and
 * `heph` commands against it. `token` is the bearer its daemon sends.
 */
export async function device(dir, name, hubUrl, { token, issuer } = {}) {
  const db = join(dir, `${name}.db`);
  const config = join(dir, `${name}-config`);
  mkdirSync(join(config, "heph"), { recursive: true });
  if (token) {
    const set = { hub: hubUrl, issuer: issuer ?? "", client_id: "heph-cli", access_token: token, issued_at: Math.floor(Date.now() / 1000) };
    writeFileSync(join(config, "heph/credentials.json"), JSON.stringify({ [hubUrl]: set }), { mode: 0o600 });
  }
  const env = { ...clean(process.env), HEPH_DB: db, TZ: "UTC", XDG_CONFIG_HOME: config, HEPH_CREDENTIAL_STORE: "file" };
  const log = openSync(join(dir, `${name}.log`), "a");
  const child = track(
    spawn(HEPHD, ["--mode", "local", "--hub-url", hubUrl.replace(/^http/, "ws"), "--db", db], {
      env: { ...env, HEPH_LOG: "info" },
      stdio: ["ignore", "ignore", log],
    }),
  );
  const d = {
    db,
    child,
    heph: (...args) => execFileSync(HEPH, args, { env }).toString(),
    json: (...args) => JSON.parse(execFileSync(HEPH, ["--json", ...args], { env }).toString()),
    stop: () => stopped(child),
  };
  await eventually(`${name}'s daemon`, () => {
    const st = d.json("sync", "--status");
    return Boolean(st.last_success);
  });
  return d;
}

/** Headless Chromium from Debian's package, never a downloaded browser. */
export async function browser() {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

/** The desktop browser window the tests use. */
export const DESKTOP = { viewport: { width: 1280, height: 860 } };

/** Ends what a test file started, in order: browsers, devices, hubs, the provider. */
export async function teardown(...parts) {
  for (const p of parts) {
    if (p?.close) await p.close();
    else if (p?.stop) await p.stop();
  }
}

/** Opens the app and waits until it has booted (the local copy shown). */
export async function open(context, url) {
  const page = await context.newPage();
  page.on("pageerror", (e) => console.error(`page error: ${e.message}`));
  await page.goto(url);
  await page.waitForFunction(() => window.heph?.ready === true);
  return page;
}

/**
 * Signs in through the provider's pages (Authorization Code + PKCE): its
 * login form when it has no session for us, then its consent page, as
 * they come.
 */
export async function login(page, user = "owner") {
  const app = new URL(page.url()).origin;
  await page.goto(new URL("/#/login", page.url()).toString());
  await page.click("#login");
  await page.waitForURL((u) => u.origin !== app);
  // oidc-provider's development login form takes any name and password; a
  // login that asks for offline access (a refresh token) is confirmed on
  // its consent page.
  for (let i = 0; i < 200 && new URL(page.url()).origin !== app; i++) {
    await page.waitForLoadState();
    const form = page.locator('input[name="login"]');
    const confirm = page.locator('button[type="submit"]', { hasText: "Continue" });
    if (await form.count()) {
      await form.fill(user);
      await page.fill('input[name="password"]', "any");
      await page.click('button[type="submit"]');
    } else if (await confirm.count()) {
      await confirm.click();
    } else {
      await sleep(50);
    }
  }
  await page.waitForFunction(() => window.heph?.ready === true && window.heph.status()?.phase === "online", null, { timeout: 60000 });
}

export function shotPath(name) {
  mkdirSync(join(OUT, "screenshots"), { recursive: true });
  return join(OUT, "screenshots", `${name}.png`);
}
