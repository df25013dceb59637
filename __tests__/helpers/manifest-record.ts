import type { ManifestFile } from '../../src/transfer/manifest/manifest.js';

/**
 * A manifest record as a crafted or hand-made manifest holds it: root's, empty, mtime 1700000000, mode
 * 0755 for a folder and 0644 otherwise; `extra` sets any field (a size, a mode, a link's target).
 */
export function manifestRecord(type: ManifestFile['type'], extra: Partial<ManifestFile> = {}): ManifestFile {
  return {
    type,
    size: 0,
    mtime: 1700000000,
    mode: type === 'dir' ? '0755' : '0644',
    uid: 0,
    gid: 0,
    user: 'root',
    group: 'root',
    ...extra,
  };
}
