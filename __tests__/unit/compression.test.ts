import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { gunzipSync } from 'node:zlib';
import { test } from 'node:test';
import {
  chooseCodec,
  compresses,
  decoder,
  encoder,
  mostlyCompressed,
  nodeHasZstd,
  parseServerCodecs,
} from '../../src/transfer/compression.js';

test('chooseCodec: auto sends as it is on a fast link or when not measured', () => {
  assert.equal(chooseCodec('auto', ['zstd', 'gzip'], true, 0.3).codec, 'none');
  assert.equal(chooseCodec('auto', ['zstd', 'gzip'], true, 3.9).codec, 'none');
  assert.equal(chooseCodec('auto', ['zstd', 'gzip'], true, undefined).codec, 'none');
  assert.match(chooseCodec('auto', ['zstd'], true, 0.3).reason, /fast link \(round trip 0\.3 ms < 4 ms\)/);
});

test('chooseCodec: auto on a slow link prefers zstd, else gzip, else none', () => {
  assert.equal(chooseCodec('auto', ['zstd', 'gzip'], true, 20).codec, 'zstd');
  assert.equal(chooseCodec('auto', ['zstd', 'gzip'], false, 20).codec, 'gzip');
  assert.equal(chooseCodec('auto', ['gzip'], true, 20).codec, 'gzip');
  assert.equal(chooseCodec('auto', ['zstd'], false, 20).codec, 'none');
  assert.equal(chooseCodec('auto', [], true, 20).codec, 'none');
});

test('chooseCodec: an explicit codec ignores the link and falls back, saying why', () => {
  assert.equal(chooseCodec('none', ['zstd', 'gzip'], true, 50).codec, 'none');
  assert.equal(chooseCodec('zstd', ['zstd', 'gzip'], true, 0.1).codec, 'zstd');
  assert.deepEqual(chooseCodec('zstd', ['gzip'], true, 0.1), {
    codec: 'gzip',
    reason: 'compression: zstd asked, gzip used (the server has no zstd)',
  });
  assert.deepEqual(chooseCodec('zstd', ['zstd', 'gzip'], false, 0.1), {
    codec: 'gzip',
    reason: "compression: zstd asked, gzip used (this Node's zlib has no zstd)",
  });
  assert.equal(chooseCodec('zstd', [], true, 0.1).codec, 'none');
  assert.equal(chooseCodec('gzip', ['zstd', 'gzip'], true, 0.1).codec, 'gzip');
  assert.equal(chooseCodec('gzip', ['zstd'], true, 0.1).codec, 'none');
});

test('parseServerCodecs reads the probe', () => {
  assert.deepEqual(
    parseServerCodecs('find (GNU findutils) 4.9.0\ntar (GNU tar) 1.34\ncodec zstd\ncodec gzip\n1000\n'),
    ['zstd', 'gzip'],
  );
  assert.deepEqual(parseServerCodecs('find (GNU findutils) 4.9.0\ncodec gzip\n1000\n'), ['gzip']);
  assert.deepEqual(parseServerCodecs('codec zstdx\n codec gzip\n'), []);
});

test('mostlyCompressed: by count of already-compressed names', () => {
  assert.equal(mostlyCompressed(['/a/x.tar.gz', '/a/y.jpg', '/a/z.sql']), true);
  assert.equal(mostlyCompressed(['/a/x.tar.gz', '/a/z.sql']), false);
  assert.equal(mostlyCompressed([]), false);
});

test('gzip encoder: level 1 on text, stored blocks on random data; both decode byte-identical', async () => {
  const text = Buffer.from('INSERT INTO t VALUES (1, "abc");\n'.repeat(100_000));
  const random = randomBytes(3 << 20);
  assert.equal(compresses(text), true);
  assert.equal(compresses(random), false);
  for (const data of [text, random, Buffer.alloc(0), Buffer.concat([random, text])]) {
    const packed = await buffer(Readable.from(chunks(data)).pipe(encoder('gzip')));
    assert.deepEqual(gunzipSync(packed), data);
    assert.deepEqual(await buffer(Readable.from([packed]).pipe(decoder('gzip'))), data);
    if (data === text) assert.ok(packed.length < data.length / 10);
    // Stored blocks: a few bytes per 64 KiB over the input.
    if (data === random) assert.ok(packed.length < data.length * 1.01);
  }
});

test(
  'zstd encoder and decoder round trip',
  { skip: nodeHasZstd() ? false : "this Node's zlib has no zstd" },
  async () => {
    const data = Buffer.concat([Buffer.from('abc\n'.repeat(300_000)), randomBytes(1 << 20)]);
    const packed = await buffer(Readable.from(chunks(data)).pipe(encoder('zstd')));
    assert.ok(packed.length < data.length);
    assert.deepEqual(await buffer(Readable.from([packed]).pipe(decoder('zstd'))), data);
  },
);

function* chunks(data: Buffer, size = 100_000): Generator<Buffer> {
  for (let i = 0; i < data.length; i += size) yield data.subarray(i, i + size);
}
