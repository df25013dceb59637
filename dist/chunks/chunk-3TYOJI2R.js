import { createRequire as __rfCreateRequire } from 'node:module';
import { fileURLToPath as __rfFileURLToPath } from 'node:url';
import { dirname as __rfDirname } from 'node:path';
var require = __rfCreateRequire(import.meta.url);
var __filename = __rfFileURLToPath(import.meta.url);
var __dirname = __rfDirname(__filename);
import {
  __commonJS,
  __require
} from "./chunk-T7UN7EJR.js";

// builtin-by-require:stream
var require_stream = __commonJS({
  "builtin-by-require:stream"(exports, module) {
    module.exports = __require("node:stream");
  }
});

// builtin-by-require:stream/promises
var require_promises = __commonJS({
  "builtin-by-require:stream/promises"(exports, module) {
    module.exports = __require("node:stream/promises");
  }
});

export {
  require_stream,
  require_promises
};
