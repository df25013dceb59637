import assert from 'node:assert/strict';
import { test } from 'node:test';
import tar from 'tar-stream';
import { archiveTime, memberHeader } from '../../src/transfer/tar/member-header.js';
import { sftpTime, sftpWriteTime } from '../../src/transfer/sftp/listing.js';
import { treeOrder } from '../../src/transfer/tree-order.js';
import type { OutgoingItem } from '../../src/transfer/types.js';

const item = (over: Partial<OutgoingItem>): OutgoingItem => ({
  rel: 'f',
  type: 'file',
  size: 0,
  mtime: 1_600_000_000,
  mode: 0o644,
  uid: 0,
  gid: 0,
  user: 'root',
  group: 'root',
  ...over,
});

/** The headers tar-stream's extractor reads back from one member packed with `h`. */
async function packedAndRead(h: ReturnType<typeof memberHeader>): Promise<tar.Header> {
  const pack = tar.pack();
  pack.entry({ ...h, type: 'file' }, Buffer.alloc(0));
  pack.finalize();
  const extract = tar.extract();
  pack.pipe(extract);
  for await (const entry of extract) {
    entry.resume();
    return entry.header;
  }
  throw new Error('no member');
}

test('tree order: a folder, then what is inside it, then its siblings that sort before "/"', () => {
  const paths = ['backup.tar', 'backup/x', 'backup', 'backup-old', 'a', 'backup/x/y', '.gitignore.', '.gitignore'];
  assert.deepEqual(paths.sort(treeOrder), [
    '.gitignore',
    '.gitignore.',
    'a',
    'backup',
    'backup/x',
    'backup/x/y',
    'backup-old',
    'backup.tar',
  ]);
});

test('tar headers: a time outside 1970–2038 and ids above 262143 travel as pax records; mode 0000 stays 0000', async () => {
  const plain = memberHeader(item({}), 'r/f');
  assert.equal(plain.pax, undefined, 'nothing extended when the ustar fields hold it');
  for (const mtime of [-1, -820_540_800, 2 ** 31, 4_102_444_800, 10_000_000_000]) {
    const h = await packedAndRead(memberHeader(item({ mtime }), 'r/f'));
    assert.equal((h.pax as Record<string, string>).mtime, String(mtime));
    assert.equal(archiveTime(h), mtime);
  }
  const ids = await packedAndRead(memberHeader(item({ uid: 300_000, gid: 4_294_967_294 }), 'r/f'));
  assert.deepEqual(ids.pax, { path: 'r/f', uid: '300000', gid: '4294967294' });
  const secret = await packedAndRead(memberHeader(item({ mode: 0 }), 'r/f'));
  assert.equal(secret.mode, 0);
});

test('a fetched time tar-stream cannot read exactly (0 or before 1970, base-256) is left to the listing', () => {
  assert.equal(archiveTime({ mtime: new Date(1_600_000_000_000), pax: null }), 1_600_000_000);
  assert.equal(archiveTime({ mtime: new Date(0), pax: null }), undefined);
  assert.equal(archiveTime({ mtime: new Date(-99_000), pax: null }), undefined);
  assert.equal(archiveTime({ mtime: new Date(0), pax: { mtime: '-1.5' } }), -2);
});

test('SFTP times: 32 bits read as signed, written clamped to what the protocol can say', () => {
  assert.equal(sftpTime(4_294_967_295), -1);
  assert.equal(sftpTime(3_474_426_496), -820_540_800);
  assert.equal(sftpTime(1_600_000_000), 1_600_000_000);
  assert.equal(sftpWriteTime(-820_540_800), 0);
  assert.equal(sftpWriteTime(1_600_000_000), 1_600_000_000);
  assert.equal(sftpWriteTime(10_000_000_000), 4_294_967_295);
});
