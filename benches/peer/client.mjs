#!/usr/bin/env node
// Workload driver for the reference automerge-repo sync server (server.mjs),
// and for any hub that speaks the same automerge-repo WebSocket protocol.
//
//   node client.mjs preload --url ws://127.0.0.1:PORT --count N --out ids.json [--batch B]
//   node client.mjs fetch   --url ws://127.0.0.1:PORT --ids ids.json --batch 250
//   node client.mjs latency --url ws://127.0.0.1:PORT --subscribers 10 --rate 50 --seconds 10 [--docs 1]
//
// Each subcommand prints exactly one JSON line on stdout (progress goes to
// stderr). Every loop is bounded in count and in time (--timeout, seconds),
// and only loopback addresses are accepted in --url.

import fs from "node:fs"
import { parseArgs } from "node:util"
import { Repo } from "@automerge/automerge-repo"
import { WebSocketClientAdapter } from "@automerge/automerge-repo-network-websocket"

// ---------------------------------------------------------------- helpers

const now = () => performance.timeOrigin + performance.now()
const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))
const log = (...args) => console.error("[client]", ...args)

function emit(obj) {
  process.stdout.write(JSON.stringify(obj) + "\n")
}

// Progress so far, included in the error line if an op has to give up.
const partial = {}

function die(op, message, code = 1) {
  emit({ op, error: message, ...partial })
  process.exit(code)
}

function checkLoopbackUrl(op, raw) {
  if (!raw) die(op, "--url is required", 2)
  let u
  try {
    u = new URL(raw)
  } catch {
    die(op, `bad --url ${raw}`, 2)
  }
  if (u.protocol !== "ws:") die(op, `only ws:// URLs are supported: ${raw}`, 2)
  const host = u.hostname.replace(/^\[|\]$/g, "")
  const loopback =
    host === "localhost" || host === "::1" || /^127(\.\d{1,3}){3}$/.test(host)
  if (!loopback) die(op, `refusing non-loopback host ${u.hostname}`, 2)
  return u.toString()
}

function intArg(op, name, value, fallback, min = 0) {
  const v = value === undefined ? fallback : Number(value)
  if (!Number.isInteger(v) || v < min) die(op, `--${name} must be an integer >= ${min}`, 2)
  return v
}

/**
 * A client Repo with one WebSocket connection to the hub and no storage.
 * Counts lost connections, and exits (error line) if the hub stays
 * unreachable for `unreachableMs`: the adapter itself retries forever.
 */
function clientRepo(op, url, unreachableMs = 30_000) {
  const adapter = new WebSocketClientAdapter(url)
  const repo = new Repo({ network: [adapter] })
  const pair = { repo, adapter, disconnects: 0, connected: false, closing: false }
  let downSince = Date.now()
  repo.networkSubsystem.on("peer", () => {
    pair.connected = true
  })
  repo.networkSubsystem.on("peer-disconnected", ({ peerId }) => {
    // The adapter re-emits this on every failed reconnect; count transitions only.
    if (pair.closing || !pair.connected) return
    pair.connected = false
    pair.disconnects++
    downSince = Date.now()
    log(`lost connection to hub peer ${peerId} (${pair.disconnects} so far)`)
  })
  pair.watchdog = setInterval(() => {
    if (!pair.connected && !pair.closing && Date.now() - downSince > unreachableMs) {
      die(op, `hub unreachable for ${unreachableMs / 1000} s (after ${pair.disconnects} lost connections)`)
    }
  }, 1000)
  return pair
}

/** Wait until the repo has a connected peer (the hub); returns its peer id. */
async function connected(repo, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    const [peer] = repo.peers
    if (peer) return peer
    await sleep(10)
  }
  throw new Error(`no connection to the hub within ${timeoutMs} ms`)
}

/** The hub's storage id, as announced in its peer metadata. */
async function hubStorageId(repo, peer, timeoutMs = 5_000) {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    const sid = repo.getStorageIdOfPeer(peer)
    if (sid) return sid
    await sleep(10)
  }
  throw new Error("the hub announced no storage id (is it running with storage?)")
}

const sameHeads = (a, b) =>
  !!a && !!b && a.length === b.length && [...a].sort().join(",") === [...b].sort().join(",")

/**
 * Resolve once the hub (identified by its storage id) has acknowledged, via the
 * sync protocol, exactly the heads this handle has now.
 */
function hubHas(handle, storageId) {
  const target = handle.heads()
  if (sameHeads(handle.getSyncInfo(storageId)?.lastHeads, target)) return Promise.resolve()
  return new Promise(resolve => {
    const onHeads = ({ storageId: sid, heads }) => {
      if (sid === storageId && sameHeads(heads, target)) {
        handle.off("remote-heads", onHeads)
        resolve()
      }
    }
    handle.on("remote-heads", onHeads)
  })
}

/** Close each client's socket and wait (briefly) for the close handshakes. */
async function closeRepos(...pairs) {
  const sockets = []
  for (const pair of pairs) {
    pair.closing = true
    clearInterval(pair.watchdog)
    const socket = pair.adapter.socket
    try {
      pair.adapter.disconnect()
      if (socket) sockets.push(socket)
    } catch {
      /* already closed */
    }
  }
  const deadline = Date.now() + 2000
  while (sockets.some(s => s.readyState !== 3 /* CLOSED */) && Date.now() < deadline) await sleep(10)
}

/** Run `fn` with a hard deadline: on expiry print an error line and exit. */
function withDeadline(op, seconds) {
  const t = setTimeout(() => die(op, `timed out after ${seconds} s`), seconds * 1000)
  return () => clearTimeout(t)
}

const round = (x, d = 3) => (x == null || Number.isNaN(x) ? null : Math.round(x * 10 ** d) / 10 ** d)

function percentile(sorted, p) {
  if (sorted.length === 0) return null
  const rank = Math.ceil((p / 100) * sorted.length)
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]
}

const STATUSES = ["pending", "waiting", "started", "done"]
const PROJECTS = ["home", "work", "heph", "garden", "errands"]
const TAGS = ["next", "someday", "phone", "computer", "reading", "review"]

function taskDoc(i, t) {
  const iso = new Date(t).toISOString()
  return {
    id: `t-${i}-${Math.random().toString(36).slice(2, 10)}`,
    kind: "task",
    title: `task ${i}`,
    status: STATUSES[0],
    tags: [TAGS[i % TAGS.length], TAGS[(i * 7 + 3) % TAGS.length]],
    priority: (i % 3) + 1,
    project: PROJECTS[i % PROJECTS.length],
    due: new Date(t + ((i % 30) + 1) * 86_400_000).toISOString(),
    created: iso,
    modified: iso,
  }
}

// ---------------------------------------------------------------- preload

async function preload(args) {
  const op = "preload"
  const url = checkLoopbackUrl(op, args.url)
  const count = intArg(op, "count", args.count, 10_000, 1)
  const batch = Math.min(count, intArg(op, "batch", args.batch, count, 1))
  const out = args.out ?? "ids.json"
  const cancel = withDeadline(op, intArg(op, "timeout", args.timeout, 1800, 1))

  const client = clientRepo(op, url)
  const { repo } = client
  const peer = await connected(repo)
  const sid = await hubStorageId(repo, peer)

  const urls = []
  const t0 = performance.now()
  for (let start = 0; start < count; start += batch) {
    const end = Math.min(count, start + batch)
    const pending = []
    const created = Date.now()
    for (let i = start; i < end; i++) {
      const handle = repo.create(taskDoc(i, created))
      urls.push(handle.url)
      pending.push(hubHas(handle, sid))
    }
    await Promise.all(pending)
    partial.acknowledged = end
    partial.seconds = round((performance.now() - t0) / 1000)
    if (end % 1000 === 0 || end === count) {
      log(`preload: ${end}/${count} acknowledged by hub, ${round((performance.now() - t0) / 1000, 1)} s`)
    }
  }
  const seconds = (performance.now() - t0) / 1000

  fs.writeFileSync(out, JSON.stringify(urls) + "\n")
  cancel()
  await closeRepos(client)
  emit({
    op,
    count,
    batch,
    seconds: round(seconds),
    docs_per_s: round(count / seconds, 1),
    disconnects: client.disconnects,
  })
}

// ---------------------------------------------------------------- fetch

async function fetchAll(args) {
  const op = "fetch"
  const url = checkLoopbackUrl(op, args.url)
  const batch = intArg(op, "batch", args.batch, 250, 1)
  if (!args.ids) die(op, "--ids is required", 2)
  const ids = JSON.parse(fs.readFileSync(args.ids, "utf8"))
  if (!Array.isArray(ids) || ids.length === 0) die(op, `no ids in ${args.ids}`, 2)
  const cancel = withDeadline(op, intArg(op, "timeout", args.timeout, 1800, 1))

  // A new peer with empty (in-memory) storage: everything must come from the hub.
  const client = clientRepo(op, url)
  const { repo } = client
  await connected(repo)

  let ok = 0
  let unavailable = 0
  let failed = 0
  let wrong = 0
  const firstErrors = []
  let firstFailedBatch = null
  const t0 = performance.now()
  for (let start = 0; start < ids.length; start += batch) {
    const slice = ids.slice(start, start + batch)
    const results = await Promise.allSettled(slice.map(id => repo.find(id)))
    let batchFailures = 0
    for (const r of results) {
      if (r.status === "fulfilled") {
        const doc = r.value.doc()
        if (doc?.kind === "task") ok++
        else wrong++
      } else {
        batchFailures++
        const msg = String(r.reason?.message ?? r.reason)
        if (/unavailable/i.test(msg)) unavailable++
        else failed++
        if (firstErrors.length < 3) firstErrors.push(msg)
      }
    }
    if (batchFailures > 0 && firstFailedBatch === null) firstFailedBatch = start / batch
    const done = Math.min(ids.length, start + batch)
    Object.assign(partial, { done, ok, unavailable, failed, seconds: round((performance.now() - t0) / 1000) })
    if (done % 1000 < batch || done === ids.length) {
      log(`fetch: ${done}/${ids.length} (${ok} ok, ${unavailable} unavailable), ${round((performance.now() - t0) / 1000, 1)} s`)
    }
  }
  const seconds = (performance.now() - t0) / 1000
  cancel()
  await closeRepos(client)
  const result = {
    op,
    count: ids.length,
    batch,
    seconds: round(seconds),
    docs_per_s: round(ids.length / seconds, 1),
    ok,
    unavailable,
    failed,
    disconnects: client.disconnects,
  }
  if (wrong) result.wrong_content = wrong
  if (firstErrors.length) {
    result.first_failed_batch = firstFailedBatch
    result.errors = firstErrors
  }
  emit(result)
  return ok === ids.length ? 0 : 3
}

// ---------------------------------------------------------------- latency

async function latency(args) {
  const op = "latency"
  const url = checkLoopbackUrl(op, args.url)
  const K = intArg(op, "subscribers", args.subscribers, 10, 1)
  const rate = intArg(op, "rate", args.rate, 50, 1)
  const seconds = intArg(op, "seconds", args.seconds, 10, 1)
  const D = intArg(op, "docs", args.docs, 1, 1)
  const drainMs = intArg(op, "drain", args.drain, 5, 0) * 1000
  const total = rate * seconds
  const cancel = withDeadline(op, intArg(op, "timeout", args.timeout, seconds + 120, 1))

  // One writer and K subscribers, each its own Repo (own peer id, own socket).
  const writer = clientRepo(op, url)
  const subs = Array.from({ length: K }, () => clientRepo(op, url))
  const writerPeer = await connected(writer.repo)
  for (const s of subs) await connected(s.repo)
  const sid = await hubStorageId(writer.repo, writerPeer)

  // The writer creates the shared documents and waits until the hub has them.
  const handles = []
  for (let d = 0; d < D; d++) handles.push(writer.repo.create({ kind: "latency", events: [] }))
  await Promise.all(handles.map(h => hubHas(h, sid)))

  // Every subscriber opens every document; each change to any document is
  // therefore delivered to every subscriber.
  const samples = []
  for (const s of subs) {
    const seen = handles.map(() => 0)
    const opened = await Promise.all(handles.map(h => s.repo.find(h.url)))
    opened.forEach((sh, d) => {
      seen[d] = sh.doc().events.length
      sh.on("change", ({ doc }) => {
        const t = now()
        const events = doc.events
        for (let i = seen[d]; i < events.length; i++) samples.push(t - events[i].t)
        seen[d] = Math.max(seen[d], events.length)
      })
    })
  }
  await sleep(500) // let the subscriptions settle

  // Paced writes: change i is due at t0 + i / rate; bounded by count and time.
  const interval = 1000 / rate
  const t0 = performance.now()
  const hardStop = t0 + seconds * 1000 + 2000
  let written = 0
  while (written < total && performance.now() < hardStop) {
    const due = t0 + written * interval
    const wait = due - performance.now()
    if (wait > 0) await sleep(wait)
    const h = handles[written % D]
    const seq = written
    h.change(doc => {
      doc.events.push({ seq, t: now() })
    })
    written++
  }
  const writeSeconds = (performance.now() - t0) / 1000

  // Wait (bounded) for the tail of deliveries.
  const expected = written * K
  const drainDeadline = performance.now() + drainMs
  while (samples.length < expected && performance.now() < drainDeadline) await sleep(20)

  cancel()
  await closeRepos(writer, ...subs)
  const sorted = samples.slice().sort((a, b) => a - b)
  const mean = sorted.length ? sorted.reduce((a, b) => a + b, 0) / sorted.length : null
  emit({
    op,
    subscribers: K,
    rate,
    docs: D,
    changes: written,
    write_seconds: round(writeSeconds),
    expected,
    deliveries: samples.length,
    p50_ms: round(percentile(sorted, 50), 1),
    p90_ms: round(percentile(sorted, 90), 1),
    p99_ms: round(percentile(sorted, 99), 1),
    max_ms: round(sorted.at(-1), 1),
    mean_ms: mean === null ? null : round(mean, 1),
    disconnects: [writer, ...subs].reduce((n, p) => n + p.disconnects, 0),
  })
  return samples.length >= expected ? 0 : 3
}

// ---------------------------------------------------------------- main

const [cmd, ...rest] = process.argv.slice(2)
const { values } = parseArgs({
  args: rest,
  options: {
    url: { type: "string" },
    count: { type: "string" },
    out: { type: "string" },
    ids: { type: "string" },
    batch: { type: "string" },
    subscribers: { type: "string" },
    rate: { type: "string" },
    seconds: { type: "string" },
    docs: { type: "string" },
    drain: { type: "string" },
    timeout: { type: "string" },
  },
  strict: true,
  allowPositionals: false,
})

const commands = { preload, fetch: fetchAll, latency }
if (!commands[cmd]) {
  console.error("usage: node client.mjs preload|fetch|latency --url ws://127.0.0.1:PORT [options]")
  process.exit(2)
}
try {
  const code = (await commands[cmd](values)) ?? 0
  process.exit(code)
} catch (err) {
  die(cmd, String(err?.message ?? err))
}
