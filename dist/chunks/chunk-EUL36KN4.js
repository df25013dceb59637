import { createRequire as __rfCreateRequire } from 'node:module';
import { fileURLToPath as __rfFileURLToPath } from 'node:url';
import { dirname as __rfDirname } from 'node:path';
var require = __rfCreateRequire(import.meta.url);
var __filename = __rfFileURLToPath(import.meta.url);
var __dirname = __rfDirname(__filename);
import {
  GIT_SAFE_NAMES,
  PORTABLE_NAMES,
  TEMP_MARK,
  exceptionForm,
  foldKey,
  require_crypto
} from "./chunk-I64HRVNT.js";
import {
  META_DIR,
  UserError,
  __toESM,
  checkLocalPath,
  checkRemotePath,
  isWithin,
  require_fs,
  require_path
} from "./chunk-BNJA3E5O.js";

// src/transfer/manifest/manifest.ts
var import_node_crypto = __toESM(require_crypto(), 1);
var import_node_fs = __toESM(require_fs(), 1);
var import_node_path = __toESM(require_path(), 1);

// src/transfer/manifest/check.ts
var TYPES = /* @__PURE__ */ new Set(["file", "dir", "symlink", "other"]);
var MODE = /^[0-7]{4}$/;
var SHA256 = /^[0-9a-f]{64}$/;
var ENCRYPTION = /^age:[0-9a-f]{16}$/;
var ACCOUNT = /^[^\x00-\x1f\x7f]{0,256}$/;
var MAX_ID = 4294967295;
function checkManifest(data, path) {
  const fail = (where, what) => {
    throw new UserError(
      `${path}: ${where} ${what}. The manifest may have been edited by hand or by someone else; take it from the store's history, or run a backup from the old server.`
    );
  };
  if (!isObject(data) || data.version !== 1 || !isObject(data.files) || !isObject(data.entries)) {
    throw new UserError(`${path}: not a remote-files manifest of version 1`);
  }
  if (typeof data.domain !== "string") fail('"domain"', "is not a string");
  if (data.encryption !== void 0 && (typeof data.encryption !== "string" || !ENCRYPTION.test(data.encryption)))
    fail('"encryption"', "is not age:<16 hex digits>");
  if (data.names !== void 0 && data.names !== GIT_SAFE_NAMES && data.names !== PORTABLE_NAMES)
    fail(
      '"names"',
      `is ${JSON.stringify(data.names)}, not "${PORTABLE_NAMES}" or "${GIT_SAFE_NAMES}" (written by a newer version?)`
    );
  checkServer(data.server, data.salvage, fail);
  const locals = [];
  for (const [local, e] of Object.entries(data.entries)) {
    const where = `entries[${JSON.stringify(local)}]`;
    checkKey(local, where, fail);
    if (!isObject(e)) fail(where, "is not an object");
    const entry = e;
    if (typeof entry.remote !== "string" || !isCanonicalRemote(entry.remote))
      fail(`${where}.remote`, "is not an absolute, normalised server path");
    if (typeof entry.recipe !== "string") fail(`${where}.recipe`, "is not a string");
    if (typeof entry.type !== "string" || !TYPES.has(entry.type))
      fail(`${where}.type`, "is not file, dir, symlink or other");
    locals.push(local);
  }
  for (const [key, f] of Object.entries(data.files)) {
    const where = `files[${JSON.stringify(key)}]`;
    checkKey(key, where, fail);
    if (!locals.some((l) => isWithin(l, key))) fail(where, "lies in no entry the manifest lists");
    if (!isObject(f)) fail(where, "is not an object");
    const r = f;
    if (typeof r.type !== "string" || !TYPES.has(r.type)) fail(`${where}.type`, "is not file, dir, symlink or other");
    if (!isCount(r.size, Number.MAX_SAFE_INTEGER) || r.type !== "file" && r.size !== 0)
      fail(`${where}.size`, "is not a byte count (0 for anything but a file)");
    if (typeof r.mtime !== "number" || !Number.isInteger(r.mtime) || Math.abs(r.mtime) > 1e13)
      fail(`${where}.mtime`, "is not whole seconds");
    if (typeof r.mode !== "string" || !MODE.test(r.mode)) fail(`${where}.mode`, "is not four octal digits");
    if (!isCount(r.uid, MAX_ID)) fail(`${where}.uid`, "is not a user id");
    if (!isCount(r.gid, MAX_ID)) fail(`${where}.gid`, "is not a group id");
    if (typeof r.user !== "string" || !ACCOUNT.test(r.user)) fail(`${where}.user`, "is not an account name");
    if (typeof r.group !== "string" || !ACCOUNT.test(r.group)) fail(`${where}.group`, "is not a group name");
    if (r.target !== void 0 && (typeof r.target !== "string" || r.target.includes("\0") || r.target === ""))
      fail(`${where}.target`, "is not a link target");
    if (r.type === "symlink" && r.target === void 0) fail(`${where}.target`, "is missing (the record is a symlink)");
    if (r.type !== "symlink" && r.target !== void 0)
      fail(`${where}.target`, "is set on a record that is not a symlink");
    if (r.sha256 !== void 0 && (typeof r.sha256 !== "string" || !SHA256.test(r.sha256)))
      fail(`${where}.sha256`, "is not 64 hex digits");
  }
  if (data.stored !== void 0) checkStored(data.stored, data, fail);
  return data;
}
function checkStored(stored, data, fail) {
  if (data.names !== PORTABLE_NAMES) fail('"stored"', `is set, but "names" is not "${PORTABLE_NAMES}"`);
  if (!isObject(stored)) fail('"stored"', "is not an object");
  const known = /* @__PURE__ */ new Set();
  for (const p of [...Object.keys(data.files), ...Object.keys(data.entries)])
    for (let q = p; q !== "" && !known.has(q); q = q.includes("/") ? q.slice(0, q.lastIndexOf("/")) : "") known.add(q);
  const used = /* @__PURE__ */ new Set();
  for (const [key, value] of Object.entries(stored)) {
    const where = `stored[${JSON.stringify(key)}]`;
    checkKey(key, where, fail);
    if (!known.has(key)) fail(where, "names no path the manifest records");
    const slash = key.lastIndexOf("/");
    const n = typeof value === "string" ? /%~([1-9][0-9]{0,5})$/.exec(value)?.[1] : void 0;
    if (n === void 0 || value !== exceptionForm(key.slice(slash + 1), Number(n)))
      fail(where, "is not the stored form portable-1 gives this path's name");
    const inFolder = `${key.slice(0, slash + 1)}${foldKey(value)}`;
    if (used.has(inFolder)) fail(where, "is the stored form of another path in its folder too");
    used.add(inFolder);
  }
}
function checkKey(key, where, fail) {
  const c = checkLocalPath(key);
  if (!c.ok) fail(where, `is not a path inside the data folder: it ${c.why}`);
  else if (c.path !== key) fail(where, "is not a normalised path");
}
function isCanonicalRemote(remote) {
  const c = checkRemotePath(remote);
  return c.ok && c.path === remote;
}
var HEX32 = /^[0-9a-f]{32}$/;
var HOST_KEY = /^[a-z0-9@.-]{1,64} SHA256:[A-Za-z0-9+/]{43}$/;
function checkServer(server, salvage, fail) {
  if (server !== void 0) {
    if (!isObject(server)) fail('"server"', "is not an object");
    const r = server;
    for (const k of Object.keys(r))
      if (!["hostKey", "machine", "instance"].includes(k)) fail(`"server".${k}`, "is unknown");
    if (r.hostKey !== void 0 && (typeof r.hostKey !== "string" || !HOST_KEY.test(r.hostKey)))
      fail('"server".hostKey', 'is not "<key type> SHA256:<43 base64 digits>"');
    if (r.machine !== void 0 && (typeof r.machine !== "string" || !SHA256.test(r.machine)))
      fail('"server".machine', "is not 64 hex digits");
    if (r.instance !== void 0 && (typeof r.instance !== "string" || !HEX32.test(r.instance)))
      fail('"server".instance', "is not 32 hex digits");
  }
  if (salvage !== void 0) {
    if (!isObject(salvage)) fail('"salvage"', "is not an object");
    const r = salvage;
    if (typeof r.id !== "string" || !HEX32.test(r.id)) fail('"salvage".id', "is not 32 hex digits");
    if (typeof r.at !== "string" || !/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/.test(r.at))
      fail('"salvage".at', "is not an ISO 8601 UTC time");
    if (Object.keys(r).length !== 2) fail('"salvage"', "holds fields other than id and at");
  }
}
function isObject(v) {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
function isCount(v, max) {
  return typeof v === "number" && Number.isInteger(v) && v >= 0 && v <= max;
}

// src/transfer/manifest/manifest.ts
var MANIFEST_NAME = "manifest.json";
function manifestPath(domainDir) {
  return (0, import_node_path.join)(domainDir, META_DIR, MANIFEST_NAME);
}
function emptyManifest(domain) {
  return { version: 1, domain, names: PORTABLE_NAMES, entries: {}, files: {} };
}
function readManifest(domainDir, domain) {
  const path = manifestPath(domainDir);
  let text;
  try {
    const fd = (0, import_node_fs.openSync)(path, import_node_fs.constants.O_RDONLY | import_node_fs.constants.O_NOFOLLOW);
    try {
      text = (0, import_node_fs.readFileSync)(fd, "utf8");
    } finally {
      (0, import_node_fs.closeSync)(fd);
    }
  } catch (err) {
    if (err.code === "ENOENT") return emptyManifest(domain);
    if (err.code === "ELOOP")
      throw new UserError(
        `${path} is a symbolic link: replace it with the manifest (take it from the store's history)`
      );
    throw err;
  }
  let data;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new UserError(
      `${path}: the manifest is not valid JSON (${err.message}); restore it from the store's history`
    );
  }
  return checkManifest(data, path);
}
function* manifestChunks(m) {
  const encryption = m.encryption ? `  "encryption": ${JSON.stringify(m.encryption)},
` : "";
  const names = m.names ? `  "names": ${JSON.stringify(m.names)},
` : "";
  const server = m.server ? `  "server": ${JSON.stringify(m.server)},
` : "";
  const salvage = m.salvage ? `  "salvage": ${JSON.stringify(m.salvage)},
` : "";
  const stored = m.stored && Object.keys(m.stored).length > 0 ? `  "stored": {
${Object.keys(m.stored).sort().map((k) => `    ${JSON.stringify(k)}: ${JSON.stringify(m.stored[k])}`).join(",\n")}
  },
` : "";
  yield `{
  "version": 1,
  "domain": ${JSON.stringify(m.domain)},
${encryption}${names}${stored}${server}${salvage}  "entries": {
`;
  yield* block(m.entries);
  yield '\n  },\n  "files": {\n';
  yield* block(m.files);
  yield "\n  }\n}\n";
}
function* block(rec) {
  let chunk = "";
  let first = true;
  for (const k of Object.keys(rec).sort()) {
    chunk += `${first ? "" : ",\n"}    ${JSON.stringify(k)}: ${JSON.stringify(rec[k])}`;
    first = false;
    if (chunk.length >= 1 << 20) {
      yield chunk;
      chunk = "";
    }
  }
  if (chunk) yield chunk;
}
function sameManifest(a, b) {
  return a === b || a.domain === b.domain && a.encryption === b.encryption && a.names === b.names && sameFields(a.server, b.server) && sameFields(a.salvage, b.salvage) && sameRecords({ s: a.stored ?? {} }, { s: b.stored ?? {} }) && sameRecords(a.entries, b.entries) && sameRecords(a.files, b.files);
}
function sameFields(a, b) {
  if (a === void 0 || b === void 0) return a === b;
  return sameRecords({ x: a }, { x: b });
}
function sameRecords(a, b) {
  const keys = Object.keys(a);
  if (keys.length !== Object.keys(b).length) return false;
  for (const k of keys) {
    const x = a[k];
    const y = b[k];
    if (x === y) continue;
    if (!y) return false;
    const fields = Object.keys(x);
    if (fields.length !== Object.keys(y).length || fields.some((f) => x[f] !== y[f])) return false;
  }
  return true;
}
function toManifestFile(f, sha256) {
  return {
    type: f.type,
    size: f.type === "file" ? f.size : 0,
    mtime: f.mtime,
    mode: modeText(f.mode),
    uid: f.uid,
    gid: f.gid,
    user: f.user,
    group: f.group,
    ...f.target !== void 0 && { target: f.target },
    ...sha256 !== void 0 && { sha256 }
  };
}
function recordOf(f, prev, sha256) {
  if (prev !== void 0 && prev.type === f.type && prev.size === (f.type === "file" ? f.size : 0) && prev.mtime === f.mtime && prev.uid === f.uid && prev.gid === f.gid && prev.user === f.user && prev.group === f.group && prev.target === f.target && prev.sha256 === sha256 && // As modeText() writes it (four octal digits), compared without making the text.
  prev.mode.length === 4 && parseInt(prev.mode, 8) === f.mode) {
    return prev;
  }
  return toManifestFile(f, sha256);
}
function modeText(mode) {
  return mode.toString(8).padStart(4, "0");
}
function storedPath(local, rel) {
  return rel === "" ? local : `${local}/${rel}`;
}
function entryPaths(m, local) {
  return Object.keys(m.files).filter((p) => p === local || p.startsWith(local + "/"));
}
function stampSalvage(m, old, server, contentChanged) {
  const salvage = contentChanged || !old.salvage ? { id: (0, import_node_crypto.randomBytes)(16).toString("hex"), at: (/* @__PURE__ */ new Date()).toISOString() } : old.salvage;
  const record = server ?? old.server;
  return { ...m, ...record && { server: record }, salvage };
}
function writeManifest(domainDir, m) {
  const path = manifestPath(domainDir);
  (0, import_node_fs.mkdirSync)((0, import_node_path.dirname)(path), { recursive: true });
  const tmp = `${path}.${TEMP_MARK}${(0, import_node_crypto.randomBytes)(6).toString("hex")}`;
  const fd = (0, import_node_fs.openSync)(tmp, "wx", 420);
  try {
    for (const chunk of manifestChunks(m)) (0, import_node_fs.writeSync)(fd, chunk);
  } finally {
    (0, import_node_fs.closeSync)(fd);
  }
  (0, import_node_fs.renameSync)(tmp, path);
}

// src/store/data-folder.ts
var import_node_crypto2 = __toESM(require_crypto(), 1);
var import_node_fs2 = __toESM(require_fs(), 1);
var import_node_path2 = __toESM(require_path(), 1);
var DATA_ATTRIBUTES = "# Written by remote-files. These files are salvaged bytes and must come back exactly as they were:\n# no line-ending conversion, no filters (LFS included), no $Id$ expansion, no re-encoding.\n* -text -eol -crlf -ident -filter -working-tree-encoding -export-subst\n";
var ATTRIBUTES_NAME = ".gitattributes";
function writeDataAttributes(domainDir) {
  const path = (0, import_node_path2.join)(domainDir, ATTRIBUTES_NAME);
  const st = (0, import_node_fs2.lstatSync)(path, { throwIfNoEntry: false });
  if (st?.isFile() && (0, import_node_fs2.readFileSync)(path, "utf8") === DATA_ATTRIBUTES) return;
  const tmp = `${path}${TEMP_MARK}${(0, import_node_crypto2.randomBytes)(6).toString("hex")}`;
  (0, import_node_fs2.writeFileSync)(tmp, DATA_ATTRIBUTES, { flag: "wx", mode: 420 });
  (0, import_node_fs2.renameSync)(tmp, path);
}
function checkDataFolder(workspace, dataDir, domain) {
  const rel = (0, import_node_path2.relative)(workspace, (0, import_node_path2.join)(workspace, dataDir, domain));
  if (rel === "" || rel.startsWith("..") || (0, import_node_path2.isAbsolute)(rel)) return;
  const parts = [...rel.split(import_node_path2.sep), META_DIR, MANIFEST_NAME];
  let current = workspace;
  for (const [i, part] of parts.entries()) {
    current = (0, import_node_path2.join)(current, part);
    const st = (0, import_node_fs2.lstatSync)(current, { throwIfNoEntry: false });
    if (!st) return;
    const last = i === parts.length - 1;
    if (last ? !st.isFile() : !st.isDirectory()) {
      const what = st.isSymbolicLink() ? "a symbolic link" : last ? "not a file" : "not a folder";
      throw new UserError(
        `the data folder's ${(0, import_node_path2.relative)(workspace, current)} is ${what}: remote-files reads and writes only real folders and files in the workspace. Replace it (the data-dir and domain inputs name the folder).`
      );
    }
  }
}

export {
  manifestPath,
  readManifest,
  sameManifest,
  toManifestFile,
  recordOf,
  modeText,
  storedPath,
  entryPaths,
  stampSalvage,
  writeManifest,
  ATTRIBUTES_NAME,
  writeDataAttributes,
  checkDataFolder
};
