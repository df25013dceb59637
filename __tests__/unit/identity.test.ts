import assert from 'node:assert/strict';
import { test } from 'node:test';
import { judgeServer, serverRecord } from '../../src/transfer/identity/identity.js';
import { parseIdentity } from '../../src/transfer/identity/probe.js';

const KEY_A = `ssh-ed25519 SHA256:${'A'.repeat(43)}`;
const KEY_B = `ssh-ed25519 SHA256:${'B'.repeat(43)}`;
const RSA = `ssh-rsa SHA256:${'C'.repeat(43)}`;
const I1 = '1'.repeat(32);
const I2 = '2'.repeat(32);
const S1 = { id: 'a'.repeat(32), at: '2026-12-01T00:00:00.000Z' };
const M1 = 'd'.repeat(64);
const M2 = 'e'.repeat(64);

test('judgeServer: the marker decides; a restore of this salvage is its successor; anything else is named', () => {
  const recorded = { hostKey: KEY_A, machine: M1, instance: I1 };
  assert.deepEqual(judgeServer(undefined, undefined, { probed: true }), { kind: 'first' });
  assert.deepEqual(judgeServer(recorded, S1, { probed: true, hostKey: KEY_A, machine: M1, instance: I1 }), {
    kind: 'same',
  });
  // A rebuild that kept the login's home keeps the marker: the machine id still tells.
  assert.deepEqual(judgeServer(recorded, S1, { probed: true, hostKey: KEY_A, machine: M2, instance: I1 }), {
    kind: 'different',
    changes: ['its /etc/machine-id changed'],
  });
  assert.deepEqual(judgeServer(recorded, S1, { probed: true, instance: I2, restoredFrom: S1.id }), {
    kind: 'restored',
  });
  const rebuilt = judgeServer(recorded, S1, { probed: true, hostKey: KEY_A, machine: M1 });
  assert.deepEqual(rebuilt, {
    kind: 'different',
    changes: ['the marker remote-files left on it at the last backup is gone'],
  });
  const older = judgeServer(recorded, S1, {
    probed: true,
    hostKey: KEY_B,
    machine: M2,
    instance: I2,
    restoredFrom: 'f'.repeat(32),
  });
  assert.equal(older.kind, 'different');
  assert.match(
    (older as { changes: string[] }).changes.join('; '),
    /host key changed.*machine-id changed.*restored from another, older salvage \(ffffffff\) than the stored one \(aaaaaaaa, made 2026-12-01/,
  );
  // Restored from a salvage newer than the stored one (kept in another store or branch): nothing older replaces anything.
  assert.deepEqual(
    judgeServer(recorded, S1, {
      probed: true,
      instance: I2,
      restoredFrom: 'f'.repeat(32),
      restoredAt: '2026-12-02T00:00:00.000Z',
    }),
    { kind: 'restored' },
  );
  // SFTP only: the host key alone, and a key of another type proves nothing.
  assert.deepEqual(judgeServer(recorded, S1, { probed: false, hostKey: RSA }), { kind: 'same' });
  assert.equal(judgeServer(recorded, S1, { probed: false, hostKey: KEY_B }).kind, 'different');
});

test('serverRecord: what was seen; without a shell the old record keeps what could not be seen', () => {
  const recorded = { hostKey: KEY_A, machine: M1, instance: I1 };
  assert.deepEqual(serverRecord(recorded, { probed: true, hostKey: KEY_B, machine: M2 }, I2), {
    hostKey: KEY_B,
    machine: M2,
    instance: I2,
  });
  assert.deepEqual(serverRecord(recorded, { probed: false, hostKey: KEY_B }, undefined), {
    ...recorded,
    hostKey: KEY_B,
  });
});

test('parseIdentity: only exact forms are taken from what the server says; the machine id is hashed with the domain', () => {
  const seen = parseIdentity(
    `machine 0123456789abcdef0123456789abcdef\ninstance ${I1}\nrestored-from ${S1.id} ${S1.at}\ninstance ${I2} extra\nrestored-from ../../etc\n`,
    'a.example',
    KEY_A,
  );
  assert.equal(seen.instance, I1);
  assert.equal(seen.restoredFrom, S1.id);
  assert.equal(seen.restoredAt, S1.at);
  assert.match(seen.machine!, /^[0-9a-f]{64}$/);
  assert.notEqual(seen.machine, parseIdentity('machine 0123456789abcdef0123456789abcdef', 'b.example', KEY_A).machine);
  assert.deepEqual(parseIdentity('machine \ninstance nothex\n', 'a.example', undefined), { probed: true });
});
