import { createRequire as __rfCreateRequire } from 'node:module';
import { fileURLToPath as __rfFileURLToPath } from 'node:url';
import { dirname as __rfDirname } from 'node:path';
var require = __rfCreateRequire(import.meta.url);
var __filename = __rfFileURLToPath(import.meta.url);
var __dirname = __rfDirname(__filename);

// src/temp.ts
import { mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
function tempRoot() {
  const root = process.env.RUNNER_TEMP || tmpdir();
  mkdirSync(root, { recursive: true });
  return root;
}

export {
  tempRoot
};
