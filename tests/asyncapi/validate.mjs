// Validates an AsyncAPI document with the official parser; prints its
// diagnostics as JSON lines and exits 1 when any is an error.
// Usage: node validate.mjs FILE  (with @asyncapi/parser on NODE_PATH)
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const { Parser } = require("@asyncapi/parser");

const source = process.argv[2];
const text = await readFile(source, "utf8");
const { diagnostics } = await new Parser().parse(text, { source });
for (const d of diagnostics) {
  console.log(JSON.stringify({ severity: d.severity, code: d.code, path: d.path, message: d.message }));
}
process.exit(diagnostics.some((d) => d.severity === 0) ? 1 : 0);
