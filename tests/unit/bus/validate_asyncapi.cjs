// Parses an AsyncAPI document with the AsyncAPI initiative's own parser (@asyncapi/parser, from npm:
// package.json's devDependencies) and prints its diagnostics as JSON lines. Exit 0 when the parser
// reports no error (severity 0) and gives a document, 1 otherwise, 2 on bad usage.
// Used by tests/unit/bus/test_asyncapi.py: `node validate_asyncapi.cjs FILE`.
"use strict";
const fs = require("fs");
const { Parser } = require("@asyncapi/parser");

async function main() {
  const file = process.argv[2];
  if (!file) {
    console.error("usage: node validate_asyncapi.cjs FILE");
    process.exit(2);
  }
  const parser = new Parser();
  const { document, diagnostics } = await parser.parse(fs.readFileSync(file, "utf8"));
  for (const d of diagnostics) {
    console.log(JSON.stringify({ severity: d.severity, code: d.code, message: d.message, path: d.path }));
  }
  const errors = diagnostics.filter((d) => d.severity === 0);
  if (!document || errors.length > 0) {
    process.exit(1);
  }
  const channels = document.channels().length;
  const operations = document.operations().length;
  const servers = document.servers().length;
  const messages = document.components().messages().length;
  console.log(JSON.stringify({ valid: true, channels, operations, servers, messages }));
}

main().catch((err) => {
  console.error(err && err.stack ? err.stack : String(err));
  process.exit(1);
});
