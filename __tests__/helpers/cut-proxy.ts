// A TCP proxy for fault tests: it sits between the action and a server, forwards bytes both ways, and
// cuts the connection — both sockets destroyed, as a dying router or a killed NAT entry would — once a
// byte budget is spent. Counting the bytes an uncut run moves, then sweeping the budget across that
// total, puts a cut at every stage of a run: TCP, key exchange, login, listing, transfer, teardown.
import net from 'node:net';

export interface CutProxyOptions {
  /** Target port on 127.0.0.1. */
  port: number;
  /** Bytes (both directions together) forwarded before the cut; Infinity never cuts (a measuring run). */
  cutAfter: number;
  /**
   * How many connections are cut before the proxy turns into a plain pipe. One by default: the action
   * retries a connection lost during the handshake, and a cut at the same byte of every attempt would
   * test the retry budget, not recovery.
   */
  cuts?: number;
  /** Called with the running byte count after every chunk forwarded: to act at a chosen moment (freeze the server). */
  onBytes?: (bytes: number) => void;
  /**
   * A slow link: each direction of each connection forwards at most this many bytes per second, so a
   * transfer of N bytes takes at least N / rate seconds however fast the machine is.
   */
  bytesPerSecond?: number;
}

export interface CutProxy {
  port: number;
  /** Bytes forwarded so far, both directions, all connections. */
  readonly bytes: number;
  /** Connections accepted so far. */
  readonly connections: number;
  /** Connections cut so far. */
  readonly cutCount: number;
  close(): Promise<void>;
}

export async function startCutProxy(opts: CutProxyOptions): Promise<CutProxy> {
  let bytes = 0;
  let connections = 0;
  let cutCount = 0;
  const maxCuts = opts.cuts ?? 1;
  const open = new Set<net.Socket>();

  const server = net.createServer((client) => {
    connections++;
    // Each connection gets its own budget, counted from its first byte.
    let budget = cutCount < maxCuts ? opts.cutAfter : Infinity;
    const upstream = net.connect(opts.port, '127.0.0.1');
    open.add(client).add(upstream);
    /** Nothing more is forwarded: the cut is due (or done), or a side went away. */
    let dead = false;
    let closed = false;
    const kill = () => {
      dead = true;
      if (closed) return;
      closed = true;
      client.destroy();
      upstream.destroy();
      open.delete(client);
      open.delete(upstream);
    };
    // Forwards what fits in the budget; the byte that spends it is the last one through.
    const pipe = (from: net.Socket, to: net.Socket) => {
      const rate = opts.bytesPerSecond;
      /** When this direction's link is free again (ms), at `rate`. */
      let free = Date.now();
      /** The held-back chunks, in order: the end is passed on after the last of them. */
      let held = Promise.resolve();
      from.on('data', (chunk: Buffer) => {
        if (dead) return;
        if (rate !== undefined) {
          // Held back until the link has carried it: nothing more is read from `from` meanwhile.
          free = Math.max(free, Date.now()) + (chunk.length / rate) * 1000;
          from.pause();
          const wait = Math.max(0, free - Date.now());
          held = held.then(
            () =>
              new Promise<void>((done) =>
                setTimeout(() => {
                  done();
                  if (dead) return;
                  bytes += chunk.length;
                  opts.onBytes?.(bytes);
                  if (to.write(chunk)) from.resume();
                  else to.once('drain', () => from.resume());
                }, wait),
              ),
          );
          return;
        }
        const part = chunk.length <= budget ? chunk : chunk.subarray(0, budget);
        budget -= part.length;
        bytes += part.length;
        opts.onBytes?.(bytes);
        if (part.length > 0) {
          // Back-pressure, so the count follows what the receiver really took, not what was buffered.
          if (!to.write(part)) {
            from.pause();
            to.once('drain', () => from.resume());
          }
        }
        if (budget <= 0 && Number.isFinite(budget)) {
          dead = true;
          cutCount++;
          // Let the last bytes leave before the sockets go.
          if (to.writableLength === 0) kill();
          else to.once('drain', kill);
        }
      });
      from.on('end', () => void held.then(() => to.end()));
    };
    pipe(client, upstream);
    pipe(upstream, client);
    client.on('error', kill);
    upstream.on('error', kill);
    client.on('close', kill);
    upstream.on('close', kill);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    get bytes() {
      return bytes;
    },
    get connections() {
      return connections;
    },
    get cutCount() {
      return cutCount;
    },
    close: async () => {
      for (const s of open) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
