// The benchmark's server-side data, written directly (the "server" is this machine) as root and then
// handed to the account that will read it. File contents are random, so nothing compresses, except the
// SQL-like dump of makeDump (P7–P9).
import { randomFillSync } from 'node:crypto';
import {
  chownSync,
  closeSync,
  existsSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';

export interface Account {
  uid: number;
  gid: number;
}

export function account(name: string): Account {
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`${name}:`));
  const f = line?.split(':');
  if (!f || f.length < 7) throw new Error(`no account ${name} in /etc/passwd`);
  return { uid: Number(f[2]), gid: Number(f[3]) };
}

/** `folders` folders d000…, each with `perFolder` files f0000… of `size` random bytes. */
export function makeTree(root: string, folders: number, perFolder: number, size: number, owner: Account): void {
  rmSync(root, { recursive: true, force: true });
  mkdirSync(root, { recursive: true });
  const buf = Buffer.alloc(size);
  for (let d = 0; d < folders; d++) {
    const dir = join(root, `d${String(d).padStart(3, '0')}`);
    mkdirSync(dir);
    for (let f = 0; f < perFolder; f++) {
      randomFillSync(buf);
      const fd = openSync(join(dir, `f${String(f).padStart(4, '0')}.bin`), 'w', 0o644);
      writeSync(fd, buf);
      closeSync(fd);
    }
  }
  chownTree(root, owner);
}

/** One file of `size` random bytes, written in 8 MiB pieces. */
export function makeFile(path: string, size: number, owner: Account): void {
  const piece = Buffer.alloc(8 * 1024 * 1024);
  const fd = openSync(path, 'w', 0o644);
  try {
    for (let left = size; left > 0; left -= piece.length) {
      randomFillSync(piece);
      writeSync(fd, piece, 0, Math.min(piece.length, left));
    }
  } finally {
    closeSync(fd);
  }
  chownSync(path, owner.uid, owner.gid);
}

const WORDS =
  'alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november oscar papa quebec romeo sierra tango uniform victor whiskey xray yankee zulu order invoice customer shipped pending refund paid cancelled berlin paris london madrid rome vienna oslo'.split(
    ' ',
  );
const STATUS = ['new', 'paid', 'shipped', 'refunded', 'cancelled'];

/**
 * A database dump of `size` bytes: INSERT lines with ids, dates, amounts, words, e-mail addresses and a
 * 40-hex-digit token each (which does not compress). Deterministic (a fixed xorshift seed). It
 * compresses about 3.0× with gzip -6 (rsync -z), 2.6× with gzip -1, 3.0× with zstd -1.
 */
export function makeDump(path: string, size: number, owner: Account): void {
  let s = 0x9e3779b9;
  const rnd = (): number => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 4294967296;
  };
  const pick = <T>(a: T[]): T => a[Math.floor(rnd() * a.length)]!;
  const fd = openSync(path, 'w', 0o644);
  try {
    let written = 0;
    let id = 1;
    while (written < size) {
      const lines: string[] = [];
      for (let i = 0; i < 500; i++, id++) {
        const date = new Date(1.6e12 + Math.floor(rnd() * 1e11)).toISOString().slice(0, 19).replace('T', ' ');
        let token = '';
        for (let k = 0; k < 5; k++)
          token += Math.floor(rnd() * 4294967296)
            .toString(16)
            .padStart(8, '0');
        const note = Array.from({ length: 2 + Math.floor(rnd() * 6) }, () => pick(WORDS)).join(' ');
        lines.push(
          `INSERT INTO orders VALUES (${id}, ${Math.floor(rnd() * 1e6)}, '${date}', '${pick(STATUS)}', ${(rnd() * 1e4).toFixed(2)}, '${pick(WORDS)}${Math.floor(rnd() * 1e4)}@example.com', '${token}', '${note}');\n`,
        );
      }
      const b = Buffer.from(lines.join(''));
      const n = Math.min(b.length, size - written);
      writeSync(fd, b, 0, n);
      written += n;
    }
  } finally {
    closeSync(fd);
  }
  chownSync(path, owner.uid, owner.gid);
}

/** An empty folder owned by `owner` where `path` was (whatever was there is removed). */
export function emptyFolder(path: string, owner: Account): void {
  rmSync(path, { recursive: true, force: true });
  mkdirSync(path, { recursive: true });
  chownSync(path, owner.uid, owner.gid);
}

export function chownTree(root: string, owner: Account): void {
  chownSync(root, owner.uid, owner.gid);
  if (!lstatSync(root).isDirectory()) return;
  for (const e of readdirSync(root, { withFileTypes: true })) {
    const p = join(root, e.name);
    if (e.isDirectory()) chownTree(p, owner);
    else chownSync(p, owner.uid, owner.gid);
  }
}

/** Regular files below `root` and their total size (to check that a tool copied everything). */
export function countFiles(root: string): { files: number; bytes: number } {
  const out = { files: 0, bytes: 0 };
  if (!existsSync(root)) return out;
  const walk = (dir: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) {
        out.files++;
        out.bytes += lstatSync(p).size;
      }
    }
  };
  if (lstatSync(root).isDirectory()) walk(root);
  else {
    out.files = 1;
    out.bytes = lstatSync(root).size;
  }
  return out;
}
