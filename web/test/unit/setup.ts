// Loads Automerge's WebAssembly for unit tests running in Node.
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { initAutomerge } from "../../src/automerge.ts";

const require = createRequire(import.meta.url);
const wasm = await readFile(require.resolve("@automerge/automerge/automerge.wasm"));
await initAutomerge(new Uint8Array(wasm));
