import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { PassThrough } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import type { Client } from 'ssh2';
import { AckCounter } from '../../src/ssh/ack-counter.js';
import { MIN_PROGRESS_BYTES, SshSession } from '../../src/ssh/session.js';

// Issue #23: the idle watchdog (`timeout`) counted any change of a channel's outgoing window as
// progress, so a server granting 64 KiB of window now and then, with nothing of ours to acknowledge,
// passed both of its rules. Only our bytes the server acknowledges count now.

test('window the server grants with nothing of ours outstanding is no progress; acknowledged bytes are, once', () => {
  const acks = new AckCounter(2 << 20);
  assert.equal(acks.update((2 << 20) + 65536), 0, 'a grant with nothing sent');
  assert.equal(acks.window, (2 << 20) + 65536);
  assert.equal(acks.update(acks.window - 4096), 0, 'sending is not progress');
  assert.equal(acks.update(acks.window + 65536), 4096, 'an acknowledgement counts up to what was sent, no more');
  assert.equal(acks.update(acks.window + 65536), 0, 'what was counted is not counted again');
  // An honest exchange: 1 MiB sent in packets, acknowledged in two adjustments.
  for (let i = 0; i < 32; i++) acks.update(acks.window - 32768);
  assert.equal(acks.update(acks.window + 524288), 524288);
  assert.equal(acks.update(acks.window + 524288), 524288);
  assert.equal(acks.update(acks.window + 1), 0);
});

interface FakeChannel extends PassThrough {
  stderr: PassThrough;
  outgoing: { window: number };
  _waitChanDrain: boolean;
}

/** A client whose one exec channel has an outgoing window, as ssh2's has; the test plays the server. */
function fakeClient(): { client: Client; channel: FakeChannel } {
  const client = new EventEmitter();
  const channel = Object.assign(new PassThrough(), {
    stderr: new PassThrough(),
    outgoing: { window: 2 << 20 },
    _waitChanDrain: false,
  });
  const exec = (_command: string, cb: (err: Error | undefined, ch: unknown) => void) => {
    cb(undefined, channel);
    return client;
  };
  const end = () => client.emit('close');
  return { client: Object.assign(client, { exec, end, destroy: end }) as unknown as Client, channel };
}

/**
 * Opens the channel on a session with `timeout` 2 s, runs `tick` every 100 ms (what passes between us
 * and the server), and returns why the connection was lost, or undefined if it lasted `forMs`.
 */
async function watched(tick: (channel: FakeChannel) => void, forMs: number): Promise<Error | undefined> {
  const { client, channel } = fakeClient();
  const session = new SshSession(client, 'test:22', undefined, { idleMs: 2000 });
  await session.execStream('cat');
  const ticking = setInterval(() => tick(channel), 100);
  try {
    for (const t0 = Date.now(); Date.now() - t0 < forMs && !session.lostError();) await sleep(50);
    return session.lostError();
  } finally {
    clearInterval(ticking);
    session.close();
  }
}

test('a server that only grants window, sending nothing, is ended by `timeout` as silent', async () => {
  const lost = await watched((ch) => (ch.outgoing.window += 65536), 8000);
  assert.match(lost?.message ?? 'not ended', /no progress for 2 s: the server sent nothing and acknowledged nothing/);
});

test('grants beyond what we sent count only as far as our bytes: a trickle of real acknowledgements is too little', async () => {
  // We send 1 KiB every 100 ms (~20 KiB per 2 s); the server acknowledges each with 64 KiB of window.
  const lost = await watched((ch) => {
    ch.outgoing.window -= 1024;
    ch.outgoing.window += 65536;
  }, 8000);
  const moved = /too little progress: (\d+) byte\(s\) moved in 2 s/.exec(lost?.message ?? '');
  assert.ok(moved, lost?.message ?? 'not ended');
  assert.ok(Number(moved[1]) < MIN_PROGRESS_BYTES && Number(moved[1]) % 1024 === 0, moved[0]);
});

test('bytes of ours the server honestly acknowledges are progress: the channel is not ended', async () => {
  // 64 KiB sent and acknowledged every 100 ms: ~1.3 MiB per stretch of `timeout`, over two stretches.
  const lost = await watched((ch) => {
    ch.outgoing.window -= 65536;
    setImmediate(() => (ch.outgoing.window += 65536));
  }, 5000);
  assert.equal(lost, undefined);
});
