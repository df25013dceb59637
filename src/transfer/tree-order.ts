/**
 * Orders paths as a walk of the tree does: a folder, then everything inside it, then its next sibling.
 * Plain string order puts `backup.tar` (and `backup-old`: "." and "-" sort before "/") between
 * `backup` and `backup/x`; GNU tar sets a folder's time once a member outside it arrives, so
 * `backup/x`, written after, changed the restored folder's mtime.
 */
export function treeOrder(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    // The separator sorts before every other character.
    if (x === 0x2f) return -1;
    if (y === 0x2f) return 1;
    return x - y;
  }
  return a.length - b.length;
}
