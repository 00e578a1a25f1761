#!/usr/bin/env node
// Reference automerge-repo sync server, set up the way the upstream
// automerge-repo-sync-server is: a Repo with a WebSocket server adapter, a
// NodeFS storage adapter, and a share policy that never announces documents
// (peers get only what they ask for by id).
//
// Usage:
//   node server.mjs [--port N] [--dir PATH] [--keepalive MS]
// Env fallbacks: PORT (default 0 = ephemeral), DATA_DIR (default ./automerge-sync-data),
// KEEPALIVE_MS (default 5000, the adapter's own default: every interval the
// server pings each client and terminates any that has not answered the
// previous ping).
// Binds 127.0.0.1 only. Prints {"port":N} on stdout once listening.
// Shuts down cleanly on SIGTERM / SIGINT.

import fs from "node:fs"
import os from "node:os"
import { parseArgs } from "node:util"
import { WebSocketServer } from "ws"
import { Repo } from "@automerge/automerge-repo"
import { WebSocketServerAdapter } from "@automerge/automerge-repo-network-websocket"
import { NodeFSStorageAdapter } from "@automerge/automerge-repo-storage-nodefs"

const { values } = parseArgs({
  options: {
    port: { type: "string" },
    dir: { type: "string" },
    keepalive: { type: "string" },
  },
  allowPositionals: false,
})

const port = Number(values.port ?? process.env.PORT ?? 0)
const dir = values.dir ?? process.env.DATA_DIR ?? "./automerge-sync-data"
const keepAliveMs = Number(values.keepalive ?? process.env.KEEPALIVE_MS ?? 5000)
if (!Number.isInteger(keepAliveMs) || keepAliveMs < 100) {
  console.error(`server: bad keepalive ${values.keepalive ?? process.env.KEEPALIVE_MS}`)
  process.exit(2)
}
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`server: bad port ${values.port ?? process.env.PORT}`)
  process.exit(2)
}
fs.mkdirSync(dir, { recursive: true })

const wss = new WebSocketServer({ host: "127.0.0.1", port })

const repo = new Repo({
  network: [new WebSocketServerAdapter(wss, keepAliveMs)],
  storage: new NodeFSStorageAdapter(dir),
  peerId: `sync-server-${os.hostname()}-${process.pid}`,
  // Do not announce documents to connected peers; serve them on request.
  sharePolicy: async () => false,
})

wss.on("listening", () => {
  const addr = wss.address()
  process.stdout.write(JSON.stringify({ port: addr.port }) + "\n")
})
// Diagnostics on stderr: connections closed abnormally (code 1006 is what a
// keepalive termination looks like; a client's own close gives 1000/1005).
let connections = 0
let abnormalCloses = 0
wss.on("connection", socket => {
  connections++
  socket.on("close", code => {
    if (code === 1006 && !stopping) {
      abnormalCloses++
      console.error(`server: connection closed abnormally (code ${code}), ${abnormalCloses} so far`)
    }
  })
})

wss.on("error", err => {
  console.error(`server: ${err.message}`)
  process.exit(1)
})

let stopping = false
async function shutdown(signal) {
  if (stopping) return
  stopping = true
  // Hard stop if the graceful path hangs.
  const hard = setTimeout(() => {
    console.error(`server: forced exit after ${signal}`)
    process.exit(1)
  }, 10_000)
  hard.unref()
  try {
    // Stop accepting connections; close existing ones.
    for (const client of wss.clients) client.terminate()
    await new Promise(resolve => wss.close(() => resolve()))
    // Stop the network side, then write any pending (throttled) saves of the
    // documents this server holds. (repo.shutdown() would also flush, but it
    // throws on handles that never became ready, e.g. unavailable ones.)
    for (const adapter of repo.networkSubsystem.adapters) adapter.disconnect()
    const ready = Object.values(repo.handles).filter(h => h.isReady())
    await repo.flush(ready.map(h => h.documentId))
  } catch (err) {
    console.error(`server: error during shutdown: ${err?.message ?? err}`)
  }
  console.error(
    `server: ${signal}: ${connections} connections, ${abnormalCloses} closed abnormally, ` +
      `${Object.keys(repo.handles).length} documents in memory`
  )
  process.exit(0)
}
process.on("SIGTERM", () => void shutdown("SIGTERM"))
process.on("SIGINT", () => void shutdown("SIGINT"))
