import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { test } from 'node:test';
import type { SFTPWrapper } from 'ssh2';
import { Sftp } from '../../src/transfer/sftp/io.js';

type Cb = (err?: Error | null) => void;

/** An SFTP session stand-in: `ext` decides what the extensions (posix-rename, lsetstat) do; plain rename succeeds. */
function fakeSftp(ext: (cb: Cb) => void): { raw: SFTPWrapper; calls: string[] } {
  const calls: string[] = [];
  const raw = Object.assign(new EventEmitter(), {
    ext_openssh_rename: (_from: string, _to: string, cb: Cb) => {
      calls.push('posix-rename');
      ext(cb);
    },
    ext_openssh_lsetstat: (_path: string, _attrs: object, cb: Cb) => {
      calls.push('lsetstat');
      ext(cb);
    },
    rename: (_from: string, _to: string, cb: Cb) => {
      calls.push('rename');
      cb(null);
    },
  });
  return { raw: raw as unknown as SFTPWrapper, calls };
}

test('an extension the server lacks (ssh2 throws "does not support") falls back to the plain call', async () => {
  const { raw, calls } = fakeSftp(() => {
    throw new Error('Server does not support this extended request');
  });
  await new Sftp(raw).rename('/a', '/b');
  assert.deepEqual(calls, ['posix-rename', 'rename']);
});

test('any other throw is not "unsupported": it fails as the connection loss', async () => {
  const lost = new Error('connection to h:22 lost (the server closed the connection)');
  let gone: Error | undefined;
  const { raw, calls } = fakeSftp(() => {
    gone = lost; // the session hears of the loss in the same turn as ssh2's throw
    throw new Error('Invalid Zlib instance');
  });
  // lsetstat has no fallback: taking the throw for "unsupported" would reject with that instead.
  await assert.rejects(new Sftp(raw, () => gone).lsetstat('/a', { mode: 0o644 }), lost);
  assert.deepEqual(calls, ['lsetstat']);
});

test('once the session knows the connection is gone, nothing more is sent', async () => {
  const lost = new Error('connection to h:22 lost (Keepalive timeout)');
  const { raw, calls } = fakeSftp((cb) => cb(null));
  await assert.rejects(new Sftp(raw, () => lost).rename('/a', '/b'), lost);
  assert.deepEqual(calls, []);
});
