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
  require_fs,
  require_path
} from "./chunk-T7UN7EJR.js";

// builtin-by-require:crypto
var require_crypto = __commonJS({
  "builtin-by-require:crypto"(exports, module) {
    module.exports = __require("node:crypto");
  }
});

// builtin-by-require:os
var require_os = __commonJS({
  "builtin-by-require:os"(exports, module) {
    module.exports = __require("node:os");
  }
});

// builtin-by-require:child_process
var require_child_process = __commonJS({
  "builtin-by-require:child_process"(exports, module) {
    module.exports = __require("node:child_process");
  }
});

// src/transfer/stored-names.ts
var GIT_SAFE_NAMES = "git-safe-1";
var ESCAPE = "%";
var HFS_IGNORABLE = /[\u200c-\u200f\u202a-\u202e\u206a-\u206f\ufeff]/g;
var GIT_NAMES = /* @__PURE__ */ new Set([".git", ".gitattributes", ".gitignore", ".gitmodules"]);
function isGitSensitive(name) {
  if (name.includes("\\")) return name.split("\\").some(isGitSensitive);
  const folded = name.replace(HFS_IGNORABLE, "").toLowerCase();
  const bare = folded.replace(/:.*$/, "").replace(/[ .]+$/, "");
  if (GIT_NAMES.has(bare)) return true;
  return /^git~\d+$/.test(bare) || /^gi[0-9a-z]{4}~\d+$/.test(bare);
}
function escapeName(name) {
  return name.startsWith(ESCAPE) || isGitSensitive(name) ? ESCAPE + name : name;
}
function unescapeName(stored) {
  return stored.startsWith(ESCAPE) ? stored.slice(ESCAPE.length) : stored;
}
function isUnescapedGitName(stored) {
  return !stored.startsWith(ESCAPE) && isGitSensitive(stored);
}
var MAY_NEED = /(^|\/|\\)(%|\.|git~|gi[0-9a-z]{4}~)|[\u200c-\u200f\u202a-\u202e\u206a-\u206f\ufeff]/i;
function escapePath(rel) {
  if (!MAY_NEED.test(rel)) return rel;
  return rel.split("/").map(escapeName).join("/");
}

// src/temp.ts
var import_node_fs = __toESM(require_fs(), 1);
var import_node_os = __toESM(require_os(), 1);
var import_node_path = __toESM(require_path(), 1);
function tempRoot() {
  const root = process.env.RUNNER_TEMP || (0, import_node_os.tmpdir)();
  (0, import_node_fs.mkdirSync)(root, { recursive: true });
  return root;
}
function privateTempDir(prefix) {
  return (0, import_node_fs.mkdtempSync)((0, import_node_path.join)(tempRoot(), prefix));
}

export {
  require_os,
  require_crypto,
  require_child_process,
  GIT_SAFE_NAMES,
  escapeName,
  unescapeName,
  isUnescapedGitName,
  escapePath,
  tempRoot,
  privateTempDir
};
