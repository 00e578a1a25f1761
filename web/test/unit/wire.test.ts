// The frame types must be what schemas/wire says (which the engine
// generates from its Rust types): regenerate with `npm run gen`.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
// @ts-expect-error: a plain ES module without type declarations.
import { generate, target } from "../../tools/gen-wire.mjs";

test("src/wire.ts is generated from schemas/wire and not stale", async () => {
  const fresh: string = await generate();
  const checked = await readFile(target as string, "utf8");
  assert.ok(checked === fresh, "src/wire.ts is stale: run `npm run gen` in web/ and commit it");
});
