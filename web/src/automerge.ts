// The one place the app gets Automerge from: the "slim" build, whose
// WebAssembly is loaded explicitly. The page loads the hashed .wasm asset
// the build emits (cached by the service worker); tests in Node hand it the
// bytes from node_modules.
import * as A from "@automerge/automerge/slim";

export { A };

/** Loads Automerge's WebAssembly once; later calls wait for the first. */
let loading: Promise<void> | undefined;
export function initAutomerge(wasm: Uint8Array | Request | Promise<Uint8Array> | string): Promise<void> {
  loading ??= A.initializeWasm(wasm);
  return loading;
}
