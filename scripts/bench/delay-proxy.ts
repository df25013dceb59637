// A loopback TCP forwarder that adds latency: every chunk read from one side is written to the other
// `delayMs` later, in order, in both directions. The round trip through it therefore grows by 2 × delayMs
// while throughput stays what the loopback allows (chunks in flight are pipelined, not serialised), as on
// a long, fat link. Half-closes (FIN) are delayed like data, so an EOF never overtakes the bytes before it.
//
// With `bitsPerSecond` it also shapes: each direction is a link of that rate with a queue in front
// (a chunk leaves once the ones before it have been sent, taking length / rate, then arrives delayMs
// later), as a bottleneck router does; the queue holds at most `highWater` bytes before the sending
// side is paused (TCP backpressure then slows the sender, as a full router queue does).
//
// Standalone: node --import tsx scripts/bench/delay-proxy.ts <target-port> [delay-ms] [listen-port] [mbit/s]
import net from 'node:net';
import { fileURLToPath } from 'node:url';

export interface DelayProxy {
  port: number;
  /** Bytes forwarded so far, both directions. */
  readonly bytes: number;
  readonly connections: number;
  close(): Promise<void>;
}

export interface DelayProxyOptions {
  /** Target port on 127.0.0.1. */
  target: number;
  /** Added per direction. */
  delayMs: number;
  /** Port to listen on (default: any free one). */
  listen?: number;
  /** Bytes held back per direction before the reading side is paused (backpressure). */
  highWater?: number;
  /** Link rate per direction in bit/s (default: unlimited, what the loopback allows). */
  bitsPerSecond?: number;
}

export async function startDelayProxy(opts: DelayProxyOptions): Promise<DelayProxy> {
  let bytes = 0;
  let connections = 0;
  const open = new Set<net.Socket>();
  // bytes per ms; what is in flight on a shaped link (rate × delay) plus a queue of about 1 MiB.
  const rate = opts.bitsPerSecond ? opts.bitsPerSecond / 8 / 1000 : undefined;
  const highWater = opts.highWater ?? (rate ? Math.ceil(rate * opts.delayMs * 2) + (1 << 20) : 16 * 1024 * 1024);

  /** One direction: from → to, each chunk released delayMs after it arrived. */
  const pipe = (from: net.Socket, to: net.Socket): void => {
    const queue: Array<{ due: number; chunk: Buffer | null }> = [];
    let held = 0;
    let timer: NodeJS.Timeout | undefined;
    let pausedByUs = false;
    /** When the shaped link has sent everything queued so far. */
    let freeAt = 0;
    /** When a chunk arriving now reaches the other side. */
    const dueOf = (length: number): number => {
      const now = performance.now();
      if (!rate) return now + opts.delayMs;
      freeAt = Math.max(now, freeAt) + length / rate;
      return freeAt + opts.delayMs;
    };
    const release = (): void => {
      timer = undefined;
      const now = performance.now();
      // Release everything due (1 ms of slack for timer granularity), in arrival order.
      while (queue.length > 0 && queue[0]!.due <= now + 1) {
        const { chunk } = queue.shift()!;
        if (chunk === null) {
          to.end();
          continue;
        }
        held -= chunk.length;
        bytes += chunk.length;
        if (!to.destroyed) to.write(chunk);
      }
      if (pausedByUs && held < highWater / 2) {
        pausedByUs = false;
        from.resume();
      }
      schedule();
    };
    const schedule = (): void => {
      if (timer || queue.length === 0) return;
      timer = setTimeout(release, Math.max(0, queue[0]!.due - performance.now()));
    };
    from.on('data', (chunk: Buffer) => {
      queue.push({ due: dueOf(chunk.length), chunk });
      held += chunk.length;
      if (held >= highWater && !pausedByUs) {
        pausedByUs = true;
        from.pause();
      }
      schedule();
    });
    from.on('end', () => {
      queue.push({ due: dueOf(0), chunk: null });
      schedule();
    });
    from.on('close', () => {
      // Abrupt close with bytes still queued: deliver them, then close the other side too.
      if (!from.readableEnded) {
        queue.push({ due: dueOf(0), chunk: null });
        schedule();
      }
    });
  };

  const server = net.createServer((client) => {
    connections++;
    client.setNoDelay(true);
    const upstream = net.connect(opts.target, '127.0.0.1');
    upstream.setNoDelay(true);
    open.add(client).add(upstream);
    const done = (): void => {
      client.destroy();
      upstream.destroy();
      open.delete(client);
      open.delete(upstream);
    };
    client.on('error', done);
    upstream.on('error', done);
    let closed = 0;
    const oneClosed = (): void => {
      if (++closed === 2) done();
    };
    client.on('close', oneClosed);
    upstream.on('close', oneClosed);
    pipe(client, upstream);
    pipe(upstream, client);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.listen ?? 0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as net.AddressInfo;
  return {
    port,
    get bytes() {
      return bytes;
    },
    get connections() {
      return connections;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of open) s.destroy();
        open.clear();
        server.close(() => resolve());
      }),
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [target, delay = '10', listen = '0', mbit] = process.argv.slice(2);
  if (!target) {
    console.error('usage: delay-proxy.ts <target-port> [delay-ms] [listen-port] [mbit/s]');
    process.exit(2);
  }
  const proxy = await startDelayProxy({
    target: Number(target),
    delayMs: Number(delay),
    listen: Number(listen),
    ...(mbit && { bitsPerSecond: Number(mbit) * 1e6 }),
  });
  console.log(
    `127.0.0.1:${proxy.port} → 127.0.0.1:${target}, +${delay} ms each way${mbit ? `, ${mbit} Mbit/s each way` : ''}`,
  );
}
