// Compression on the wire for the tar transport (and, for SFTP-only accounts, the SSH layer's zlib).
// The server compresses with its own `zstd` or `gzip` (found by the transport probe); this side uses
// Node's built-in codecs: zstd where zlib has it (Node ≥ 22.15 / 24), gzip otherwise.
import zlib from 'node:zlib';
import { Transform, type TransformCallback } from 'node:stream';

export const COMPRESSIONS = ['auto', 'zstd', 'gzip', 'none'] as const;
export type CompressionSetting = (typeof COMPRESSIONS)[number];
export type Codec = 'zstd' | 'gzip' | 'none';

/**
 * Round trip below which `auto` sends uncompressed: loopback and a LAN answer in well under a
 * millisecond, a link across the internet in 5–100 ms. On a link that short the cipher, not the wire,
 * is the limit (loopback moves ~250 MB/s here), and compressing would only add CPU work; with 4 ms
 * or more, one SSH channel (2 MiB window) moves at most ~500 MB/s, slower than zstd -1 on text and
 * far slower than zstd on data that does not compress (~600 MB/s, it stores such blocks raw).
 */
export const FAST_LINK_RTT_MS = 4;

/** Names of formats that are compressed already: `auto` sends a fetch made mostly of them as it is. */
const COMPRESSED =
  /\.(gz|tgz|zst|zstd|xz|txz|bz2|tbz2?|lz4|lzma|lz|br|zip|jar|war|7z|rar|jpe?g|png|gif|webp|avif|heic|mp[34]|m4[av]|mkv|webm|mov|avi|ogg|opus|flac|woff2?|pdf|docx|xlsx|pptx|odt|apk|deb|rpm|crypt|age|gpg)$/i;

/** What the server has, from the probe's `codec NAME` lines. */
export function parseServerCodecs(probe: string): Codec[] {
  const found = new Set<Codec>();
  for (const m of probe.matchAll(/^codec (zstd|gzip)$/gm)) found.add(m[1] as Codec);
  return (['zstd', 'gzip'] as const).filter((c) => found.has(c));
}

/** zstd in this Node's zlib (Node ≥ 22.15 and 24 have it). */
export function nodeHasZstd(): boolean {
  const z = zlib as unknown as Record<string, unknown>;
  return typeof z.createZstdCompress === 'function' && typeof z.createZstdDecompress === 'function';
}

export interface CodecChoice {
  codec: Codec;
  /** Why, for the log. */
  reason: string;
}

/**
 * The codec of one connection, decided once after the probe. Pure: the inputs are what the server has,
 * what this Node has, and the measured round trip (undefined when it could not be measured).
 * - `none`: never compress.
 * - `zstd` / `gzip`: that codec where both sides have it, else the other one, else none (said why).
 * - `auto`: none on a fast link (round trip under FAST_LINK_RTT_MS, or not measured); otherwise zstd
 *   where both sides have it, else gzip.
 */
export function chooseCodec(
  setting: CompressionSetting,
  server: readonly Codec[],
  clientZstd: boolean,
  rttMs: number | undefined,
): CodecChoice {
  if (setting === 'none') return { codec: 'none', reason: 'compression: none' };
  const zstd = server.includes('zstd') && clientZstd;
  const gzip = server.includes('gzip');
  const missing = (c: Codec) =>
    c === 'zstd' && !clientZstd ? "this Node's zlib has no zstd" : `the server has no ${c}`;
  if (setting === 'auto') {
    if (rttMs === undefined) return { codec: 'none', reason: 'auto: round trip not measured, sent as it is' };
    const rtt = `round trip ${rttMs.toFixed(1)} ms`;
    if (rttMs < FAST_LINK_RTT_MS)
      return { codec: 'none', reason: `auto: fast link (${rtt} < ${FAST_LINK_RTT_MS} ms), sent as it is` };
    if (zstd) return { codec: 'zstd', reason: `auto: ${rtt}, zstd` };
    if (gzip) return { codec: 'gzip', reason: `auto: ${rtt}, gzip (${missing('zstd')})` };
    return { codec: 'none', reason: `auto: ${rtt}, but the server has neither zstd nor gzip` };
  }
  if (setting === 'zstd') {
    if (zstd) return { codec: 'zstd', reason: 'compression: zstd' };
    if (gzip) return { codec: 'gzip', reason: `compression: zstd asked, gzip used (${missing('zstd')})` };
    return { codec: 'none', reason: `compression: zstd asked, none used (${missing('zstd')}, nor gzip)` };
  }
  if (gzip) return { codec: 'gzip', reason: 'compression: gzip' };
  return { codec: 'none', reason: 'compression: gzip asked, none used (the server has no gzip)' };
}

/** `auto` leaves a fetch made mostly (by count) of already-compressed formats uncompressed. */
export function mostlyCompressed(names: readonly string[]): boolean {
  if (names.length === 0) return false;
  let n = 0;
  for (const name of names) if (COMPRESSED.test(name)) n++;
  return n * 2 > names.length;
}

/** Decompresses what the server compressed. */
export function decoder(codec: Exclude<Codec, 'none'>): Transform {
  if (codec === 'gzip') return zlib.createGunzip({ chunkSize: 64 << 10 });
  // A frame may ask for a window of up to 128 MiB (libzstd's default limit): a hostile server could make
  // this side hold that much. zstd -1 to -9 use 0.5–8 MiB; larger windows are refused.
  const z = zlib as unknown as { createZstdDecompress(o?: object): Transform; constants: Record<string, number> };
  return z.createZstdDecompress({ chunkSize: 64 << 10, params: { [z.constants.ZSTD_d_windowLogMax!]: 23 } });
}

/** Input compressed as a sample before deciding whether gzip is worth it for an upload. */
const SAMPLE_BYTES = 1 << 20;

/**
 * Compresses an upload, in Node's thread pool. zstd at level 3 (~170 MB/s of text here, faster than a
 * 1 Gbit/s link; cheap on data that does not compress: it stores such blocks raw). gzip at level 1, or level 0 (stored blocks, no CPU) when the first MiB
 * came out at more than 90% of its size: gzip -1 takes ~50 MB/s on random data, slower than a fast link.
 */
export function encoder(codec: Exclude<Codec, 'none'>): Transform {
  if (codec === 'zstd') {
    const z = zlib as unknown as { createZstdCompress(o?: object): Transform; constants: Record<string, number> };
    return z.createZstdCompress({ chunkSize: 64 << 10, params: { [z.constants.ZSTD_c_compressionLevel!]: 3 } });
  }
  return new SampledGzip();
}

/** Whether `sample` shrinks to at most 90% at gzip -1. */
export function compresses(sample: Buffer): boolean {
  return sample.length === 0 || zlib.deflateRawSync(sample, { level: 1 }).length <= 0.9 * sample.length;
}

/** gzip whose level is chosen on the first MiB (see encoder). */
class SampledGzip extends Transform {
  private held: Buffer[] = [];
  private size = 0;
  private gz: zlib.Gzip | undefined;

  constructor() {
    super({ highWaterMark: 1 << 20 });
  }

  override _read(size: number): void {
    this.gz?.resume();
    super._read(size);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    if (this.gz) return this.feed(chunk, done);
    this.held.push(chunk);
    this.size += chunk.length;
    if (this.size < SAMPLE_BYTES) return done();
    this.feed(this.start(), done);
  }

  override _flush(done: TransformCallback): void {
    const rest = this.gz ? undefined : this.start();
    const gz = this.gz!;
    gz.once('end', () => done());
    gz.end(rest);
  }

  /** Creates the compressor at the level the sample calls for; returns the sample. */
  private start(): Buffer {
    const sample = Buffer.concat(this.held);
    this.held = [];
    const gz = zlib.createGzip({ level: compresses(sample.subarray(0, SAMPLE_BYTES)) ? 1 : 0, chunkSize: 64 << 10 });
    gz.on('data', (c: Buffer) => {
      if (!this.push(c)) gz.pause();
    });
    gz.on('error', (err: Error) => this.destroy(err));
    this.gz = gz;
    return sample;
  }

  private feed(chunk: Buffer, done: TransformCallback): void {
    if (this.gz!.write(chunk)) done();
    else this.gz!.once('drain', () => done());
  }
}
