// What the idle watchdog (session.ts) counts as progress on the outgoing side of a channel.

/**
 * Counts the bytes of ours a server acknowledged, from the values ssh2 gives a channel's outgoing
 * window: sending lowers it, the server's window adjustments raise it again as it consumes what we
 * sent. Only that acknowledgement is progress, and only up to the bytes we sent that are not yet
 * counted: a server may grant window nobody asked for (a 64 KiB adjustment now and then, with no data
 * of ours outstanding), which proves no work, and counting it let such a server pass both watchdogs.
 * Sending alone is no progress either: it is our doing, not the server's.
 */
export class AckCounter {
  /** Sent and not yet acknowledged. */
  private unacked = 0;

  constructor(private current: number) {}

  /** The window as ssh2 last set it. */
  get window(): number {
    return this.current;
  }

  /** Takes the window's new value; returns how many bytes that acknowledges (0 when it fell, or grew unasked). */
  update(next: number): number {
    const change = next - this.current;
    this.current = next;
    if (change <= 0) {
      this.unacked -= change;
      return 0;
    }
    const acked = Math.min(change, this.unacked);
    this.unacked -= acked;
    return acked;
  }
}
