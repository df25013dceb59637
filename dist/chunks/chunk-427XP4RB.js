import { createRequire as __rfCreateRequire } from 'node:module';
import { fileURLToPath as __rfFileURLToPath } from 'node:url';
import { dirname as __rfDirname } from 'node:path';
var require = __rfCreateRequire(import.meta.url);
var __filename = __rfFileURLToPath(import.meta.url);
var __dirname = __rfDirname(__filename);
import {
  META_DIR,
  UserError,
  __toESM,
  require_fs,
  require_path
} from "./chunk-AVJ33FCR.js";

// src/transfer/manifest.ts
var import_node_fs = __toESM(require_fs(), 1);
var import_node_path = __toESM(require_path(), 1);
var MANIFEST_NAME = "manifest.json";
function manifestPath(domainDir) {
  return (0, import_node_path.join)(domainDir, META_DIR, MANIFEST_NAME);
}
function emptyManifest(domain) {
  return { version: 1, domain, entries: {}, files: {} };
}
function readManifest(domainDir, domain) {
  const path = manifestPath(domainDir);
  let text;
  try {
    text = (0, import_node_fs.readFileSync)(path, "utf8");
  } catch (err) {
    if (err.code === "ENOENT") return emptyManifest(domain);
    throw err;
  }
  let data;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new UserError(`${path}: the manifest is not valid JSON (${err.message}); restore it from the store's history`);
  }
  if (data.version !== 1 || typeof data.files !== "object" || typeof data.entries !== "object") {
    throw new UserError(`${path}: not a remote-files manifest of version 1`);
  }
  return data;
}
function* manifestChunks(m) {
  const encryption = m.encryption ? `  "encryption": ${JSON.stringify(m.encryption)},
` : "";
  yield `{
  "version": 1,
  "domain": ${JSON.stringify(m.domain)},
${encryption}  "entries": {
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
  return a === b || a.domain === b.domain && a.encryption === b.encryption && sameRecords(a.entries, b.entries) && sameRecords(a.files, b.files);
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

export {
  manifestPath,
  readManifest,
  manifestChunks,
  sameManifest,
  toManifestFile,
  recordOf,
  storedPath,
  entryPaths
};
