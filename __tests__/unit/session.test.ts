import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { PassThrough } from 'node:stream';
import { test } from 'node:test';
import type { Client } from 'ssh2';
import { SshSession } from '../../src/ssh/session.js';

/**
 * A channel whose exit status comes in the same turn as the reply to the exec request, before the
 * caller awaiting the channel can listen: what ssh2 does when both arrive in one read of the socket.
 */
function clientSendingExitAtOnce(exit: [number | null, string?]): Client {
  const client = new EventEmitter();
  const exec = (_command: string, cb: (err: Error | undefined, ch: unknown) => void) => {
    const ch = Object.assign(new PassThrough(), { stderr: new PassThrough() });
    cb(undefined, ch);
    ch.emit('exit', ...exit);
    setImmediate(() => {
      ch.stderr.end();
      ch.end();
      ch.resume();
    });
    return client;
  };
  return Object.assign(client, { exec }) as unknown as Client;
}

test('an exit status that arrives with the exec reply is not lost (no wait for the grace period)', async () => {
  const started = performance.now();
  const signalled = await new SshSession(clientSendingExitAtOnce([null, 'SIGTERM']), 'test:22').exec('kill -TERM $$');
  assert.equal(signalled.signal, 'SIGTERM');
  const failed = await new SshSession(clientSendingExitAtOnce([3]), 'test:22').exec('exit 3');
  assert.equal(failed.code, 3);
  assert.ok(performance.now() - started < 1000, 'neither waited for the exit grace');
});
