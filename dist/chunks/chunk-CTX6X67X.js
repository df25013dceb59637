import { createRequire as __rfCreateRequire } from 'node:module';
import { fileURLToPath as __rfFileURLToPath } from 'node:url';
import { dirname as __rfDirname } from 'node:path';
var require = __rfCreateRequire(import.meta.url);
var __filename = __rfFileURLToPath(import.meta.url);
var __dirname = __rfDirname(__filename);
import {
  __commonJS,
  __require,
  __toESM,
  require_fs
} from "./chunk-AVJ33FCR.js";

// builtin-by-require:crypto
var require_crypto = __commonJS({
  "builtin-by-require:crypto"(exports, module) {
    module.exports = __require("node:crypto");
  }
});

// builtin-by-require:child_process
var require_child_process = __commonJS({
  "builtin-by-require:child_process"(exports, module) {
    module.exports = __require("node:child_process");
  }
});

// builtin-by-require:os
var require_os = __commonJS({
  "builtin-by-require:os"(exports, module) {
    module.exports = __require("node:os");
  }
});

// src/temp.ts
var import_node_fs = __toESM(require_fs(), 1);
var import_node_os = __toESM(require_os(), 1);
function tempRoot() {
  const root = process.env.RUNNER_TEMP || (0, import_node_os.tmpdir)();
  (0, import_node_fs.mkdirSync)(root, { recursive: true });
  return root;
}

export {
  require_os,
  require_crypto,
  require_child_process,
  tempRoot
};
