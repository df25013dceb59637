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

// builtin-by-require:fs/promises
var require_promises2 = __commonJS({
  "builtin-by-require:fs/promises"(exports, module) {
    module.exports = __require("node:fs/promises");
  }
});

// src/transfer/manifest/stored-names.ts
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

// src/transfer/manifest/portable-names.ts
var PORTABLE_NAMES = "portable-1";
var MAX_NAME_BYTES = 255;
var EXCEPTION_BODY_BYTES = 240;
var EXCEPTION_MARK = "%~";
var BAD_CHAR = /[<>:"|?*\\\x00-\x1f\x7f]/;
var DEVICE = /^(con|prn|aux|nul|com[0-9\u00b9\u00b2\u00b3]|lpt[0-9\u00b9\u00b2\u00b3]|conin\$|conout\$|clock\$) *(\..*)?$/i;
function byteLength(s) {
  return Buffer.byteLength(s, "utf8");
}
var ASCII = /^[\x00-\x7f]*$/;
function isNFC(s) {
  return ASCII.test(s) || s === s.normalize("NFC");
}
function isPortableName(name) {
  return name !== "" && !name.startsWith("%") && !BAD_CHAR.test(name) && !/[. ]$/.test(name) && !DEVICE.test(name) && !isGitSensitive(name) && isNFC(name) && byteLength(name) <= MAX_NAME_BYTES;
}
function percent(c) {
  let out = "";
  for (const b of Buffer.from(c, "utf8")) out += `%${b.toString(16).toUpperCase().padStart(2, "0")}`;
  return out;
}
function encode(name, ascii) {
  const chars = [...name];
  let out = "";
  chars.forEach((c, i) => {
    const code = c.codePointAt(0);
    const encodeIt = c === "%" || BAD_CHAR.test(c) || i === chars.length - 1 && (c === "." || c === " ") || ascii && code > 126;
    out += encodeIt ? percent(c) : c;
  });
  return out;
}
function escaped(name) {
  const form = `%${encode(name, !isNFC(name))}`;
  return isNFC(form) ? form : `%${encode(name, true)}`;
}
function baseForm(name) {
  return isPortableName(name) ? name : escaped(name);
}
function exceptionForm(name, n) {
  let body = encode(name, true);
  if (body.length > EXCEPTION_BODY_BYTES) {
    let cut = EXCEPTION_BODY_BYTES;
    const pct = body.lastIndexOf("%", cut - 1);
    if (pct >= 0 && pct > cut - 3) cut = pct;
    body = body.slice(0, cut);
  }
  return `%${body}${EXCEPTION_MARK}${n}`;
}
var EXCEPTION_FORM = /^%(?:[\x20-\x24\x26-\x7e]|%[0-9A-F]{2})+%~[1-9][0-9]*$/;
function isExceptionForm(stored) {
  return EXCEPTION_FORM.test(stored);
}
function nameOfStored(stored) {
  if (!stored.startsWith("%")) return isPortableName(stored) ? stored : void 0;
  if (isExceptionForm(stored) || !/^%(?:[^%]|%[0-9A-F]{2})*$/.test(stored)) return void 0;
  const bytes = [];
  const body = stored.slice(1);
  for (let i = 0; i < body.length; ) {
    if (body[i] === "%") {
      bytes.push(parseInt(body.slice(i + 1, i + 3), 16));
      i += 3;
    } else {
      const c = String.fromCodePoint(body.codePointAt(i));
      bytes.push(...Buffer.from(c, "utf8"));
      i += c.length;
    }
  }
  const name = Buffer.from(bytes).toString("utf8");
  return baseForm(name) === stored ? name : void 0;
}
function foldKey(stored) {
  if (ASCII.test(stored)) return stored.toLowerCase();
  return stored.normalize("NFD").toUpperCase().toLowerCase().normalize("NFC");
}
var RAW_NAMES = { toDisk: (rel) => rel, fromDisk: (_, name) => name };
var GIT_SAFE_SCHEME = {
  toDisk: escapePath,
  fromDisk: (_, name) => isUnescapedGitName(name) ? void 0 : unescapeName(name)
};
function parentOf(path) {
  const i = path.lastIndexOf("/");
  return i < 0 ? "" : path.slice(0, i);
}
function nameOf(path, parent) {
  return parent === "" ? path : path.slice(parent.length + 1);
}
function byBytes(a, b) {
  return Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
}
var PortableNames = class {
  /** Path → stored name of its last component. */
  disk = /* @__PURE__ */ new Map();
  /** Folder → fold key of a stored name in it → the path stored under it. */
  taken = /* @__PURE__ */ new Map();
  /** How many exception forms were assigned (none: the manifest records none, found at once). */
  exceptionCount = 0;
  /** Folder → exception stored name → server name. */
  exceptions = /* @__PURE__ */ new Map();
  /**
   * `recorded`: the manifest's `stored` field; `paths`: the paths the manifest records (with their
   * folders), decided now so that their order, not the order of later calls, decides.
   */
  constructor(recorded, paths) {
    for (const [path, stored] of Object.entries(recorded ?? {})) this.assign(path, stored);
    this.decide(paths);
  }
  /** Decides the stored names of these paths and the folders above them, in byte order. */
  decide(paths) {
    const fresh = [];
    const seen = /* @__PURE__ */ new Set();
    for (const p of paths) {
      for (let q = p; q !== "" && !seen.has(q); q = parentOf(q)) {
        seen.add(q);
        if (!this.disk.has(q)) fresh.push(q);
      }
    }
    const groups = /* @__PURE__ */ new Map();
    const exceptional = [];
    for (const path of fresh) {
      const parent = parentOf(path);
      const stored = baseForm(nameOf(path, parent));
      if (byteLength(stored) > MAX_NAME_BYTES || this.isTaken(parent, stored, path)) {
        exceptional.push(path);
        continue;
      }
      const key = `${parent}\0${foldKey(stored)}`;
      const group = groups.get(key);
      if (group) group.push({ path, stored });
      else groups.set(key, [{ path, stored }]);
    }
    for (const group of groups.values()) {
      if (group.length > 1) {
        group.sort((a, b) => byBytes(a.path, b.path));
        exceptional.push(...group.slice(1).map((g) => g.path));
      }
      this.assign(group[0].path, group[0].stored);
    }
    for (const path of exceptional.sort(byBytes)) this.component(path);
  }
  /** The stored name of a path's last component. */
  component(path) {
    const known = this.disk.get(path);
    if (known !== void 0) return known;
    const parent = parentOf(path);
    const name = nameOf(path, parent);
    let stored = baseForm(name);
    if (byteLength(stored) > MAX_NAME_BYTES || this.isTaken(parent, stored, path)) {
      for (let n = 1; ; n++) {
        stored = exceptionForm(name, n);
        if (!this.isTaken(parent, stored, path)) break;
      }
    }
    this.assign(path, stored);
    return stored;
  }
  /** Every path decided so far, with the folders above it. */
  decidedPaths() {
    return [...this.disk.keys()];
  }
  /** Whole paths already mapped: a backup resolves each path several times. */
  paths = /* @__PURE__ */ new Map();
  toDisk(rel) {
    if (rel === "") return rel;
    const known = this.paths.get(rel);
    if (known !== void 0) return known;
    const parent = parentOf(rel);
    const disk = parent === "" ? this.component(rel) : `${this.toDisk(parent)}/${this.component(rel)}`;
    this.paths.set(rel, disk);
    return disk;
  }
  fromDisk(parent, diskName) {
    const exception = this.exceptions.get(parent)?.get(diskName);
    if (exception !== void 0) return exception;
    const name = nameOfStored(diskName);
    if (name === void 0) return void 0;
    const decided = this.disk.get(parent === "" ? name : `${parent}/${name}`);
    return decided === void 0 || decided === diskName ? name : void 0;
  }
  /** The exceptions among these paths and the folders above them: the manifest's `stored` field. */
  table(paths) {
    const out = {};
    if (this.exceptionCount === 0) return out;
    const seen = /* @__PURE__ */ new Set();
    for (const p of paths) {
      for (let q = p; q !== "" && !seen.has(q); q = parentOf(q)) {
        seen.add(q);
        const stored = this.disk.get(q);
        if (stored !== void 0 && isExceptionForm(stored)) out[q] = stored;
      }
    }
    return Object.fromEntries(
      Object.keys(out).sort().map((k) => [k, out[k]])
    );
  }
  isTaken(parent, stored, path) {
    const holder = this.taken.get(parent)?.get(foldKey(stored));
    return holder !== void 0 && holder !== path;
  }
  assign(path, stored) {
    const parent = parentOf(path);
    this.disk.set(path, stored);
    let keys = this.taken.get(parent);
    if (!keys) this.taken.set(parent, keys = /* @__PURE__ */ new Map());
    keys.set(foldKey(stored), path);
    if (isExceptionForm(stored)) {
      this.exceptionCount++;
      let ex = this.exceptions.get(parent);
      if (!ex) this.exceptions.set(parent, ex = /* @__PURE__ */ new Map());
      ex.set(stored, path.slice(parent === "" ? 0 : parent.length + 1));
    }
  }
};
function manifestPaths(m) {
  return [...Object.keys(m.files), ...Object.keys(m.entries)];
}
var schemes = /* @__PURE__ */ new WeakMap();
function namesOf(m) {
  let scheme = schemes.get(m);
  if (!scheme) {
    scheme = m.names === PORTABLE_NAMES ? new PortableNames(m.stored, manifestPaths(m)) : m.names === GIT_SAFE_NAMES ? GIT_SAFE_SCHEME : RAW_NAMES;
    schemes.set(m, scheme);
  }
  return scheme;
}

// src/transfer/local/tree.ts
var import_node_crypto2 = __toESM(require_crypto(), 1);
var import_node_fs3 = __toESM(require_fs(), 1);
var import_node_stream = __toESM(require_stream(), 1);
var import_promises2 = __toESM(require_promises(), 1);

// src/transfer/local/patched-file.ts
var import_node_crypto = __toESM(require_crypto(), 1);
var import_node_fs2 = __toESM(require_fs(), 1);
var import_promises = __toESM(require_promises2(), 1);
var READ = 1 << 20;
var PatchMismatch = class extends Error {
  name = "PatchMismatch";
};
var PatchedFile = class _PatchedFile {
  constructor(fh) {
    this.fh = fh;
  }
  fh;
  hash = (0, import_node_crypto.createHash)("sha256");
  /** Bytes from the start already hashed: nothing before this offset may change any more. */
  hashed = 0;
  buf = Buffer.allocUnsafe(READ);
  /** A hash of the copy's first bytes made ahead, in case the changes all come after them (see prefix). */
  side;
  /**
   * Copies the open stored file to `tmp` (a name that must not exist). The copy reads the open file,
   * not its name (`/proc/self/fd`): a link put in its place meanwhile is never followed.
   */
  static async copyOf(stored, tmp) {
    await (0, import_promises.copyFile)(`/proc/self/fd/${stored.fd}`, tmp, import_node_fs2.constants.COPYFILE_EXCL | import_node_fs2.constants.COPYFILE_FICLONE);
    return new _PatchedFile(await (0, import_promises.open)(tmp, import_node_fs2.constants.O_RDWR | import_node_fs2.constants.O_NOFOLLOW));
  }
  /** Hashes the copy's own bytes up to `offset`: they stay as the stored copy had them. */
  async hashTo(offset) {
    while (this.hashed < offset) {
      const want = Math.min(READ, offset - this.hashed);
      const { bytesRead } = await this.fh.read(this.buf, 0, want, this.hashed);
      if (bytesRead === 0) throw new Error("the stored copy is shorter than its unchanged part");
      this.hash.update(this.buf.subarray(0, bytesRead));
      this.hashed += bytesRead;
    }
  }
  /**
   * Hashes the copy's first `offset` bytes ahead, while the server decides (an appended file's tail
   * comes after them); used by the first put() at or after `offset`, ignored by one before it.
   */
  prefix(offset) {
    const ready = (async () => {
      const hash = (0, import_node_crypto.createHash)("sha256");
      const buf = Buffer.allocUnsafe(READ);
      for (let at = 0; at < offset; ) {
        const { bytesRead } = await this.fh.read(buf, 0, Math.min(READ, offset - at), at);
        if (bytesRead === 0) throw new Error("the stored copy is shorter than its unchanged part");
        hash.update(buf.subarray(0, bytesRead));
        at += bytesRead;
      }
      return hash;
    })();
    ready.catch(() => void 0);
    this.side = { offset, ready };
  }
  /** Writes the server's bytes at `offset`, which may not go back before what is already hashed. */
  async put(offset, data) {
    if (offset < this.hashed) throw new Error("changed bytes out of order");
    const side = this.side;
    this.side = void 0;
    if (side && this.hashed === 0 && offset >= side.offset) {
      const hash = await side.ready.catch(() => void 0);
      if (hash) [this.hash, this.hashed] = [hash, side.offset];
    }
    await this.hashTo(offset);
    for (let done = 0; done < data.length; ) {
      const { bytesWritten } = await this.fh.write(data, done, data.length - done, offset + done);
      done += bytesWritten;
    }
    this.hash.update(data);
    this.hashed = offset + data.length;
  }
  /**
   * Cuts the copy to `size`, hashes what is left, and checks the whole against `sha256`
   * (PatchMismatch when it differs). Mode and mtime are set on the open file; the caller renames it.
   */
  async finish(size, sha256, mode, mtime) {
    this.side = void 0;
    if (this.hashed > size) throw new PatchMismatch("more bytes than the file has");
    await this.fh.truncate(size);
    await this.hashTo(size);
    if (this.hash.digest("hex") !== sha256)
      throw new PatchMismatch("the file put together does not have the server's SHA-256");
    await this.fh.chmod(mode);
    await this.fh.utimes(mtime, mtime);
    await this.close();
  }
  async close() {
    await this.fh.close().catch(() => void 0);
  }
};

// src/transfer/local/tree.ts
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
  tempPrefix = `${TEMP_MARK}${(0, import_node_crypto2.randomBytes)(6).toString("hex")}-`;
  tempCount = 0;
  scheme;
  /** The scheme that maps server names to stored names; portable-1 for a new folder. */
  get names() {
    const given = this.options.names;
    return this.scheme ??= typeof given === "function" ? given() : given ?? new PortableNames(void 0, []);
  }
  /**
   * Absolute path of a domain-relative path (as the server names it), refused if it could leave the
   * folder. On disk, each name has its stored form (portable-names.ts).
   */
  resolve(rel) {
    const abs = safeJoin(this.root, this.names.toDisk(rel));
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
      (0, import_node_fs3.mkdirSync)(this.root, { recursive: true });
      this.knownDirs.add("");
    }
    let current = "";
    for (const part of rel.split("/").filter(Boolean)) {
      current = current === "" ? part : `${current}/${part}`;
      if (this.knownDirs.has(current)) continue;
      const abs = this.resolve(current);
      const st = (0, import_node_fs3.lstatSync)(abs, { throwIfNoEntry: false });
      if (st && !st.isDirectory()) (0, import_node_fs3.rmSync)(abs, { force: true });
      if (!st?.isDirectory()) (0, import_node_fs3.mkdirSync)(abs);
      this.knownDirs.add(current);
    }
  }
  /**
   * Writes a file atomically with mode and mtime; returns its SHA-256 and size. With `expect`, content
   * whose SHA-256 differs is refused (ContentMismatch) and nothing is renamed into place.
   */
  async writeFile(rel, content, size, mode, mtime, onBytes, expect) {
    const abs = this.resolve(rel);
    this.ensureDir(parentOf2(rel));
    const tmp = this.tempName(abs);
    const hash = (0, import_node_crypto2.createHash)("sha256");
    let written = 0;
    let sha256 = "";
    this.inFlight.add(tmp);
    try {
      if (size <= SMALL_FILE) {
        const chunks = [];
        for await (const chunk of content) {
          chunks.push(chunk);
          written += chunk.length;
          onBytes?.(chunk.length);
        }
        const data = Buffer.concat(chunks);
        hash.update(data);
        (0, import_node_fs3.writeFileSync)(
          tmp,
          this.options.encrypt ? Buffer.concat(await this.options.encrypt(import_node_stream.Readable.from([data])).toArray()) : data,
          { mode: localMode(mode), flag: "wx" }
        );
      } else {
        const out = (0, import_node_fs3.createWriteStream)(tmp, { fd: (0, import_node_fs3.openSync)(tmp, "wx", localMode(mode)), highWaterMark: 1 << 20 });
        const counted = async function* (source) {
          for await (const chunk of source) {
            hash.update(chunk);
            written += chunk.length;
            onBytes?.(chunk.length);
            yield chunk;
          }
        };
        const encrypt = this.options.encrypt;
        if (encrypt)
          await (0, import_promises2.pipeline)(content, counted, (plain) => encrypt(import_node_stream.Readable.from(plain)), out);
        else await (0, import_promises2.pipeline)(content, counted, out);
      }
      if (written !== size) throw new Error(`"${rel}": received ${written} bytes, the archive announced ${size}`);
      sha256 = hash.digest("hex");
      if (expect && sha256 !== expect.sha256)
        throw new ContentMismatch(`"${rel}": its SHA-256 is not the expected one`);
      (0, import_node_fs3.chmodSync)(tmp, localMode(mode));
      (0, import_node_fs3.utimesSync)(tmp, mtime, mtime);
      this.renameOver(tmp, rel, abs);
    } catch (err) {
      (0, import_node_fs3.rmSync)(tmp, { force: true });
      throw err;
    } finally {
      this.inFlight.delete(tmp);
    }
    return { sha256, size: written };
  }
  /**
   * Removes the temp files of writes still in progress. A transfer that failed may leave a write
   * waiting forever on a stream that will neither end nor fail; its temp file must not outlive the run.
   */
  abandonWrites() {
    for (const tmp of this.inFlight) (0, import_node_fs3.rmSync)(tmp, { force: true });
    this.inFlight.clear();
  }
  /**
   * A temp copy of the stored file at `rel`, made from `stored` (opened without following a link), for a
   * delta transfer to change in place: `store` checks the result's SHA-256 and renames it over the old
   * file, `drop` removes it. Either way the temp file never outlives the run (see abandonWrites).
   */
  async patchFile(rel, stored) {
    const abs = this.resolve(rel);
    const tmp = this.tempName(abs);
    this.inFlight.add(tmp);
    let file;
    const drop = async () => {
      await file?.close();
      (0, import_node_fs3.rmSync)(tmp, { force: true });
      this.inFlight.delete(tmp);
    };
    try {
      file = await PatchedFile.copyOf(stored, tmp);
    } catch (err) {
      await drop();
      throw err;
    }
    const opened = file;
    return {
      prefix: (offset) => opened.prefix(offset),
      put: (offset, data) => opened.put(offset, data),
      store: async (size, sha256, mode, mtime) => {
        try {
          await opened.finish(size, sha256, localMode(mode), mtime);
          this.renameOver(tmp, rel, abs);
        } catch (err) {
          await drop();
          throw err instanceof PatchMismatch ? new ContentMismatch(err.message) : err;
        }
        this.inFlight.delete(tmp);
        return { sha256, size };
      },
      drop
    };
  }
  /** Stores a symlink as a symlink (never followed), atomically replacing what was there. */
  writeSymlink(rel, target) {
    const abs = this.resolve(rel);
    this.ensureDir(parentOf2(rel));
    const tmp = this.tempName(abs);
    (0, import_node_fs3.symlinkSync)(target, tmp);
    this.renameOver(tmp, rel, abs);
  }
  /** Removes a stored path (a folder with everything in it); symlinks are removed, not followed. */
  remove(rel) {
    try {
      (0, import_node_fs3.rmSync)(this.resolve(rel), { recursive: true, force: true });
    } catch (err) {
      if (err.code !== "ENOTDIR") throw err;
    }
    this.forgetDirs(rel);
  }
  exists(rel) {
    let st;
    try {
      st = (0, import_node_fs3.lstatSync)(this.resolve(rel), { throwIfNoEntry: false });
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
      const st = (0, import_node_fs3.lstatSync)(this.resolve(current), { throwIfNoEntry: false });
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
    const names = this.names;
    const visit = (r) => {
      const abs = this.resolve(r);
      for (const e of (0, import_node_fs3.readdirSync)(abs, { withFileTypes: true })) {
        const name = names.fromDisk(r, e.name);
        if (name === void 0) continue;
        const child = `${r}/${name}`;
        if (e.isFile())
          out.set(child, { type: "file", size: (0, import_node_fs3.lstatSync)(`${abs}/${e.name}`, { throwIfNoEntry: false })?.size ?? -1 });
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
      (0, import_node_fs3.renameSync)(tmp, abs);
    } catch (err) {
      const code = err.code;
      if (code !== "EISDIR" && code !== "ENOTEMPTY" && code !== "EEXIST") throw err;
      (0, import_node_fs3.rmSync)(abs, { recursive: true, force: true });
      this.forgetDirs(rel);
      (0, import_node_fs3.renameSync)(tmp, abs);
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
var ContentMismatch = class extends Error {
  name = "ContentMismatch";
};
function parentOf2(rel) {
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
  PORTABLE_NAMES,
  exceptionForm,
  foldKey,
  PortableNames,
  manifestPaths,
  namesOf,
  require_promises2 as require_promises,
  TEMP_MARK,
  LocalTree,
  ContentMismatch,
  tempRoot,
  privateTempDir
};
