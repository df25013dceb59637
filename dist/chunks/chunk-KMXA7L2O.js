import { createRequire as __rfCreateRequire } from 'node:module';
import { fileURLToPath as __rfFileURLToPath } from 'node:url';
import { dirname as __rfDirname } from 'node:path';
var require = __rfCreateRequire(import.meta.url);
var __filename = __rfFileURLToPath(import.meta.url);
var __dirname = __rfDirname(__filename);
import {
  __commonJS,
  __require
} from "./chunk-BNJA3E5O.js";

// builtin-by-require:fs/promises
var require_promises = __commonJS({
  "builtin-by-require:fs/promises"(exports, module) {
    module.exports = __require("node:fs/promises");
  }
});

export {
  require_promises
};
