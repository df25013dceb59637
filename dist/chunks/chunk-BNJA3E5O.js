import { createRequire as __rfCreateRequire } from 'node:module';
import { fileURLToPath as __rfFileURLToPath } from 'node:url';
import { dirname as __rfDirname } from 'node:path';
var require = __rfCreateRequire(import.meta.url);
var __filename = __rfFileURLToPath(import.meta.url);
var __dirname = __rfDirname(__filename);
var __create = Object.create;
var __defProp = Object.defineProperty;
var __getOwnPropDesc = Object.getOwnPropertyDescriptor;
var __getOwnPropNames = Object.getOwnPropertyNames;
var __getProtoOf = Object.getPrototypeOf;
var __hasOwnProp = Object.prototype.hasOwnProperty;
var __require = /* @__PURE__ */ ((x) => typeof require !== "undefined" ? require : typeof Proxy !== "undefined" ? new Proxy(x, {
  get: (a, b) => (typeof require !== "undefined" ? require : a)[b]
}) : x)(function(x) {
  if (typeof require !== "undefined") return require.apply(this, arguments);
  throw Error('Dynamic require of "' + x + '" is not supported');
});
var __commonJS = (cb, mod) => function __require2() {
  try {
    return mod || (0, cb[__getOwnPropNames(cb)[0]])((mod = { exports: {} }).exports, mod), mod.exports;
  } catch (e) {
    throw mod = 0, e;
  }
};
var __export = (target, all) => {
  for (var name in all)
    __defProp(target, name, { get: all[name], enumerable: true });
};
var __copyProps = (to, from, except, desc) => {
  if (from && typeof from === "object" || typeof from === "function") {
    for (let key of __getOwnPropNames(from))
      if (!__hasOwnProp.call(to, key) && key !== except)
        __defProp(to, key, { get: () => from[key], enumerable: !(desc = __getOwnPropDesc(from, key)) || desc.enumerable });
  }
  return to;
};
var __toESM = (mod, isNodeMode, target) => (target = mod != null ? __create(__getProtoOf(mod)) : {}, __copyProps(
  // If the importer is in node compatibility mode or this is not an ESM
  // file that has been converted to a CommonJS file using a Babel-
  // compatible transform (i.e. "__esModule" has not been set), then set
  // "default" to the CommonJS "module.exports" for node compatibility.
  isNodeMode || !mod || !mod.__esModule ? __defProp(target, "default", { value: mod, enumerable: true }) : target,
  mod
));

// builtin-by-require:fs
var require_fs = __commonJS({
  "builtin-by-require:fs"(exports, module) {
    module.exports = __require("node:fs");
  }
});

// builtin-by-require:path
var require_path = __commonJS({
  "builtin-by-require:path"(exports, module) {
    module.exports = __require("node:path");
  }
});

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

// src/errors.ts
var UserError = class extends Error {
  name = "UserError";
};
var RecipeError = class extends UserError {
  constructor(file, line, detail) {
    super(`${file}${line ? `:${line}` : ""}: ${detail}`);
    this.file = file;
    this.line = line;
  }
  file;
  line;
  name = "RecipeError";
};
var HostileServerError = class extends Error {
  name = "HostileServerError";
};

// src/plan/paths.ts
var import_node_path = __toESM(require_path(), 1);
var ODD_NAME = /\0|^\/|\/\/|\/$|(^|\/)\.\.?(\/|$)/;
function checkLocalPath(local) {
  if (local !== "" && !ODD_NAME.test(local) && !isWithin(META_DIR, local)) return { ok: true, path: local };
  if (local.includes("\0")) return { ok: false, why: "contains a NUL byte" };
  if (local.startsWith("/"))
    return { ok: false, why: "is absolute (local paths are relative to the domain data folder)" };
  const parts = local.split("/").filter((p) => p !== "" && p !== ".");
  if (parts.includes("..")) return { ok: false, why: 'climbs out of the data folder with ".."' };
  if (parts.length === 0) return { ok: false, why: "is empty (it would be the whole data folder)" };
  if (parts[0] === META_DIR) return { ok: false, why: `uses the reserved name ${META_DIR} (the manifest's folder)` };
  return { ok: true, path: parts.join("/") };
}
var META_DIR = ".remote-files";
function checkRemotePath(remote) {
  if (remote.includes("\0")) return { ok: false, why: "contains a NUL byte" };
  if (!remote.startsWith("/")) return { ok: false, why: "is not absolute" };
  const parts = remote.split("/").filter((p) => p !== "" && p !== ".");
  if (parts.includes("..")) return { ok: false, why: 'contains ".."' };
  return { ok: true, path: "/" + parts.join("/") };
}
function isWithin(outer, inner) {
  return inner === outer || inner.startsWith(outer.endsWith("/") ? outer : outer + "/");
}
function safeJoin(base, member) {
  if (member !== "" && !ODD_NAME.test(member))
    return base === "" || base.endsWith("/") ? base + member : `${base}/${member}`;
  if (member.includes("\0") || member.startsWith("/")) return null;
  const parts = member.split("/").filter((p) => p !== "" && p !== ".");
  if (parts.includes("..")) return null;
  return parts.length === 0 ? base : import_node_path.posix.join(base, ...parts);
}

export {
  __require,
  __commonJS,
  __export,
  __toESM,
  require_fs,
  require_path,
  UserError,
  RecipeError,
  HostileServerError,
  require_stream,
  checkLocalPath,
  META_DIR,
  checkRemotePath,
  isWithin,
  safeJoin,
  require_promises
};
