import { createRequire as __rfCreateRequire } from 'node:module';
import { fileURLToPath as __rfFileURLToPath } from 'node:url';
import { dirname as __rfDirname } from 'node:path';
var require = __rfCreateRequire(import.meta.url);
var __filename = __rfFileURLToPath(import.meta.url);
var __dirname = __rfDirname(__filename);
import {
  HostileServerError,
  __commonJS,
  __require,
  __toESM,
  require_fs,
  require_path,
  require_promises,
  require_stream,
  safeJoin
} from "./chunk-BNJA3E5O.js";

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

// src/transfer/local-tree.ts
var import_node_crypto = __toESM(require_crypto(), 1);
var import_node_fs2 = __toESM(require_fs(), 1);
var import_node_stream = __toESM(require_stream(), 1);
var import_promises = __toESM(require_promises(), 1);
var SMALL_FILE = 1 << 20;
var TEMP_MARK = ".rf-tmp-";
var LocalTree = class {
  /**
   * `encrypt` turns each file's content into what is stored (age ciphertext); the hash and size that
   * writeFile returns stay the plaintext's, so the manifest compares content, not ciphertext.
   */
  constructor(root, options = {}) {
    this.root = root;
    this.options = options;
  }
  root;
  options;
  /** Temp files of writes in progress (see abandonWrites). */
  inFlight = /* @__PURE__ */ new Set();
  /**
   * Folders this run created or checked to be real folders (not links), so each is checked once and
   * not once per file written in it. Only this run writes the tree; whatever removes a folder drops it.
   */
  knownDirs = /* @__PURE__ */ new Set();
  /** Temp names: unguessable per run, then counted (a random name per file cost a syscall each). */
  tempPrefix = `${TEMP_MARK}${(0, import_node_crypto.randomBytes)(6).toString("hex")}-`;
  tempCount = 0;
  /**
   * Absolute path of a domain-relative path (as the server names it), refused if it could leave the
   * folder. Names git would interpret are escaped on disk (stored-names.ts), unless this tree is one an
   * older version wrote (`rawNames`), which is only ever read.
   */
  resolve(rel) {
    const abs = safeJoin(this.root, this.options.rawNames ? rel : escapePath(rel));
    if (abs === null) throw new HostileServerError(`refusing to write "${rel}": it would land outside the data folder`);
    return abs;
  }
  /**
   * Creates a folder and its parents. A stored symlink or file where a folder must now be is stale
   * (the server changed it) and is removed rather than followed.
   */
  ensureDir(rel) {
    if (this.knownDirs.has(rel)) return;
    this.resolve(rel);
    if (!this.knownDirs.has("")) {
      (0, import_node_fs2.mkdirSync)(this.root, { recursive: true });
      this.knownDirs.add("");
    }
    let current = "";
    for (const part of rel.split("/").filter(Boolean)) {
      current = current === "" ? part : `${current}/${part}`;
      if (this.knownDirs.has(current)) continue;
      const abs = this.resolve(current);
      const st = (0, import_node_fs2.lstatSync)(abs, { throwIfNoEntry: false });
      if (st && !st.isDirectory()) (0, import_node_fs2.rmSync)(abs, { force: true });
      if (!st?.isDirectory()) (0, import_node_fs2.mkdirSync)(abs);
      this.knownDirs.add(current);
    }
  }
  /** Writes a file atomically with mode and mtime; returns its SHA-256 and size. */
  async writeFile(rel, content, size, mode, mtime) {
    const abs = this.resolve(rel);
    this.ensureDir(parentOf(rel));
    const tmp = this.tempName(abs);
    const hash = (0, import_node_crypto.createHash)("sha256");
    let written = 0;
    this.inFlight.add(tmp);
    try {
      if (size <= SMALL_FILE) {
        const chunks = [];
        for await (const chunk of content) {
          chunks.push(chunk);
          written += chunk.length;
        }
        const data = Buffer.concat(chunks);
        hash.update(data);
        (0, import_node_fs2.writeFileSync)(
          tmp,
          this.options.encrypt ? Buffer.concat(await this.options.encrypt(import_node_stream.Readable.from([data])).toArray()) : data,
          { mode: localMode(mode), flag: "wx" }
        );
      } else {
        const out = (0, import_node_fs2.createWriteStream)(tmp, { fd: (0, import_node_fs2.openSync)(tmp, "wx", localMode(mode)), highWaterMark: 1 << 20 });
        const counted = async function* (source) {
          for await (const chunk of source) {
            hash.update(chunk);
            written += chunk.length;
            yield chunk;
          }
        };
        const encrypt = this.options.encrypt;
        if (encrypt)
          await (0, import_promises.pipeline)(content, counted, (plain) => encrypt(import_node_stream.Readable.from(plain)), out);
        else await (0, import_promises.pipeline)(content, counted, out);
      }
      if (written !== size) throw new Error(`"${rel}": received ${written} bytes, the archive announced ${size}`);
      (0, import_node_fs2.chmodSync)(tmp, localMode(mode));
      (0, import_node_fs2.utimesSync)(tmp, mtime, mtime);
      this.renameOver(tmp, rel, abs);
    } catch (err) {
      (0, import_node_fs2.rmSync)(tmp, { force: true });
      throw err;
    } finally {
      this.inFlight.delete(tmp);
    }
    return { sha256: hash.digest("hex"), size: written };
  }
  /**
   * Removes the temp files of writes still in progress. A transfer that failed may leave a write
   * waiting forever on a stream that will neither end nor fail; its temp file must not outlive the run.
   */
  abandonWrites() {
    for (const tmp of this.inFlight) (0, import_node_fs2.rmSync)(tmp, { force: true });
    this.inFlight.clear();
  }
  /** Stores a symlink as a symlink (never followed), atomically replacing what was there. */
  writeSymlink(rel, target) {
    const abs = this.resolve(rel);
    this.ensureDir(parentOf(rel));
    const tmp = this.tempName(abs);
    (0, import_node_fs2.symlinkSync)(target, tmp);
    this.renameOver(tmp, rel, abs);
  }
  /** Removes a stored path (a folder with everything in it); symlinks are removed, not followed. */
  remove(rel) {
    try {
      (0, import_node_fs2.rmSync)(this.resolve(rel), { recursive: true, force: true });
    } catch (err) {
      if (err.code !== "ENOTDIR") throw err;
    }
    this.forgetDirs(rel);
  }
  exists(rel) {
    let st;
    try {
      st = (0, import_node_fs2.lstatSync)(this.resolve(rel), { throwIfNoEntry: false });
    } catch (err) {
      if (err.code === "ENOTDIR") return null;
      throw err;
    }
    if (!st) return null;
    return {
      type: st.isFile() ? "file" : st.isDirectory() ? "dir" : st.isSymbolicLink() ? "symlink" : "other",
      size: st.size
    };
  }
  /**
   * What is stored at `rel`, checked component by component from the tree's root, for a restore that
   * is about to read it: `through` names the first folder on the way that is a link or not a folder
   * (the stored item is then not read at all), so a data folder that someone crafted with
   * `www -> /proc/self` can never make us read outside the tree.
   */
  inspect(rel) {
    const parts = rel.split("/");
    let current = "";
    for (const part of parts.slice(0, -1)) {
      current = current === "" ? part : `${current}/${part}`;
      if (this.checkedDirs.has(current)) continue;
      const st = (0, import_node_fs2.lstatSync)(this.resolve(current), { throwIfNoEntry: false });
      if (!st) return { item: null };
      if (!st.isDirectory()) return { item: null, through: current };
      this.checkedDirs.add(current);
    }
    return { item: this.exists(rel) };
  }
  /** Folders inspect() found to be real folders. */
  checkedDirs = /* @__PURE__ */ new Set();
  /**
   * What is stored at `rel` and below it: each path (pre-order, relative to the tree) with its type,
   * and for files their size (one readdir per folder, one lstat per file). A walk made ahead by
   * prewalk() is handed out once.
   */
  walk(rel) {
    const ready = this.walked.get(rel);
    this.walked.delete(rel);
    return ready ?? this.walkNow(rel);
  }
  /**
   * Walks these now, to be handed out by walk(). The backup calls it while the server is still
   * listing (see run.ts): at 20,000 stored files the lstat calls take ~80 ms this side would otherwise
   * spend waiting. A folder that cannot be walked now is walked again, and reported, by walk().
   */
  prewalk(rels) {
    for (const rel of rels) {
      try {
        if (!this.walked.has(rel)) this.walked.set(rel, this.walkNow(rel));
      } catch {
      }
    }
  }
  walked = /* @__PURE__ */ new Map();
  walkNow(rel) {
    const out = /* @__PURE__ */ new Map();
    const root = this.exists(rel);
    if (!root) return out;
    out.set(rel, root);
    const raw = this.options.rawNames === true;
    const visit = (r) => {
      const abs = this.resolve(r);
      for (const e of (0, import_node_fs2.readdirSync)(abs, { withFileTypes: true })) {
        if (!raw && isUnescapedGitName(e.name)) continue;
        const child = `${r}/${raw ? e.name : unescapeName(e.name)}`;
        if (e.isFile())
          out.set(child, { type: "file", size: (0, import_node_fs2.lstatSync)(`${abs}/${e.name}`, { throwIfNoEntry: false })?.size ?? -1 });
        else out.set(child, { type: e.isDirectory() ? "dir" : e.isSymbolicLink() ? "symlink" : "other", size: 0 });
        if (e.isDirectory()) visit(child);
      }
    };
    if (root.type === "dir") visit(rel);
    return out;
  }
  /**
   * Renames a finished temp file or link into place. A folder there is stale (the server turned it
   * into a file): rename cannot replace a folder with a file, so the folder goes and the rename is
   * retried. Trying first costs nothing in the usual case, where a check first would cost a syscall.
   */
  renameOver(tmp, rel, abs) {
    try {
      (0, import_node_fs2.renameSync)(tmp, abs);
    } catch (err) {
      const code = err.code;
      if (code !== "EISDIR" && code !== "ENOTEMPTY" && code !== "EEXIST") throw err;
      (0, import_node_fs2.rmSync)(abs, { recursive: true, force: true });
      this.forgetDirs(rel);
      (0, import_node_fs2.renameSync)(tmp, abs);
    }
  }
  forgetDirs(rel) {
    if (!this.knownDirs.has(rel)) return;
    for (const d of this.knownDirs) if (d === rel || d.startsWith(rel + "/")) this.knownDirs.delete(d);
  }
  tempName(abs) {
    return `${abs.slice(0, abs.lastIndexOf("/") + 1)}${this.tempPrefix}${++this.tempCount}`;
  }
};
function parentOf(rel) {
  const i = rel.lastIndexOf("/");
  return i < 0 ? "" : rel.slice(0, i);
}
function localMode(mode) {
  return mode & 511 | 384;
}

export {
  require_os,
  require_crypto,
  require_child_process,
  GIT_SAFE_NAMES,
  escapeName,
  isUnescapedGitName,
  escapePath,
  TEMP_MARK,
  LocalTree,
  tempRoot,
  privateTempDir
};
