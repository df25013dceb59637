import assert from 'node:assert/strict';
import { test } from 'node:test';
// ssh2 is CommonJS and Node cannot see `utils` as a named export.
import ssh2 from 'ssh2';
import { UserError } from '../../src/errors.js';
import { fingerprintOf, makeHostVerifier, parseFingerprints, type HostKeyPolicy } from '../../src/ssh/hostkeys.js';

// Fixed vectors made with OpenSSH, so hashing and fingerprints are checked against the real thing:
// ssh-keygen -t ed25519; `ssh-keygen -lf`; `ssh-keygen -H` of "[example.com]:2222 …" and "example.com …".
const ED = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIL5kJfC7qGWA0a83pU5bw7XTZVuuF64Qae/EwIpunEFl';
const ED_FP = 'SHA256:mIGaNrvlCSkB00t91Qmb7s0liU67uMVPgJGVz99obFc';
const ED_HASHED_2222 = `|1|c9mVO2P6TVoiB4BZqsO4P5jlMVM=|scnaaiHJfIUEjUcvvzYm7b0wZBc= ${ED}`;
const ED_HASHED_22 = `|1|fnMen0Rrb9qreITSEbBm/ASd/cQ=|fYcpMH2VlTLjS01D3QoX/rDFXsA= ${ED}`;

const ECDSA = ssh2.utils.generateKeyPairSync('ecdsa', { bits: 256 }).public;
const RSA = ssh2.utils.generateKeyPairSync('rsa', { bits: 1024 }).public;
const OTHER_ED = ssh2.utils.generateKeyPairSync('ed25519').public;

const blob = (line: string): Buffer => Buffer.from(line.split(' ')[1]!, 'base64');
const policy = (p: Partial<HostKeyPolicy>): HostKeyPolicy => ({
  knownHosts: '',
  fingerprints: '',
  insecure: false,
  ...p,
});
const accepts = (p: Partial<HostKeyPolicy>, host: string, port: number, key: string): boolean =>
  makeHostVerifier(policy(p), host, port).verify(blob(key));

test('fingerprints are computed as ssh-keygen -lf prints them', () => {
  assert.equal(fingerprintOf(blob(ED)), ED_FP);
});

test('a plain known_hosts line pins its host on port 22 only, case-insensitively', () => {
  const knownHosts = `example.com ${ED}`;
  assert.equal(accepts({ knownHosts }, 'example.com', 22, ED), true);
  assert.equal(accepts({ knownHosts }, 'EXAMPLE.com', 22, ED), true);
  assert.equal(accepts({ knownHosts }, 'example.com', 22, OTHER_ED), false);
  const v = makeHostVerifier(policy({ knownHosts }), 'example.com', 2222);
  assert.equal(v.verify(blob(ED)), false);
  assert.match(v.refusal!, /known-hosts` has no line for \[example\.com\]:2222/);
  assert.match(v.refusal!, /ssh-keyscan -p 2222 example\.com/);
});

test('[host]:port lines pin that port', () => {
  const knownHosts = `[127.0.0.1]:2222 ${ED}`;
  assert.equal(accepts({ knownHosts }, '127.0.0.1', 2222, ED), true);
  assert.equal(accepts({ knownHosts }, '127.0.0.1', 22, ED), false);
  assert.equal(accepts({ knownHosts }, '127.0.0.1', 2223, ED), false);
});

test('host lists with * and ? wildcards', () => {
  const knownHosts = `*.example.com,10.0.0.?,[*.test]:2200 ${ED}`;
  assert.equal(accepts({ knownHosts }, 'a.example.com', 22, ED), true);
  assert.equal(accepts({ knownHosts }, 'a.b.example.com', 22, ED), true);
  assert.equal(accepts({ knownHosts }, 'example.com', 22, ED), false);
  assert.equal(accepts({ knownHosts }, '10.0.0.5', 22, ED), true);
  assert.equal(accepts({ knownHosts }, '10.0.0.15', 22, ED), false);
  assert.equal(accepts({ knownHosts }, 'db.test', 2200, ED), true);
  assert.equal(accepts({ knownHosts }, 'db.test', 22, ED), false);
});

test('a matching !negation excludes the host whatever else matches', () => {
  const knownHosts = `*.example.com,!bad.example.com ${ED}`;
  assert.equal(accepts({ knownHosts }, 'good.example.com', 22, ED), true);
  assert.equal(accepts({ knownHosts }, 'bad.example.com', 22, ED), false);
});

test('hashed entries (ssh-keygen -H) match host and [host]:port', () => {
  assert.equal(accepts({ knownHosts: ED_HASHED_2222 }, 'example.com', 2222, ED), true);
  assert.equal(accepts({ knownHosts: ED_HASHED_2222 }, 'example.com', 22, ED), false);
  assert.equal(accepts({ knownHosts: ED_HASHED_22 }, 'example.com', 22, ED), true);
  assert.equal(accepts({ knownHosts: ED_HASHED_22 }, 'other.example.com', 22, ED), false);
});

test('several key types for one host: any of them is accepted, and pinned types are offered first', () => {
  const knownHosts = `# from ssh-keyscan\n\n[h]:2222 ${RSA}\n[h]:2222 ${ECDSA}\n`;
  assert.equal(accepts({ knownHosts }, 'h', 2222, RSA), true);
  assert.equal(accepts({ knownHosts }, 'h', 2222, ECDSA), true);
  assert.equal(accepts({ knownHosts }, 'h', 2222, ED), false);
  const order = makeHostVerifier(policy({ knownHosts }), 'h', 2222).algorithms();
  assert.deepEqual(order.slice(0, 4), ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa', 'ecdsa-sha2-nistp256']);
  assert.ok(order.includes('ssh-ed25519'), 'other types stay on offer so a mismatch can name the key the server has');
});

test('@revoked keys are refused even when a fingerprint pins them', () => {
  const v = makeHostVerifier(
    policy({ knownHosts: `[h]:2222 ${RSA}\n@revoked * ${ED}`, fingerprints: ED_FP }),
    'h',
    2222,
  );
  assert.equal(v.verify(blob(ED)), false);
  assert.match(v.refusal!, /revoked.*ssh-ed25519 SHA256:mIGa.*line 2/);
  assert.equal(v.verify(blob(RSA)), true);
});

test('@cert-authority lines are ignored with a note', () => {
  const v = makeHostVerifier(
    policy({ knownHosts: `@cert-authority *.example.com ${ED}\nh ${RSA}` }),
    'a.example.com',
    22,
  );
  assert.equal(v.notes.length, 1);
  assert.match(v.notes[0]!, /line 1: @cert-authority is not supported/);
  assert.equal(v.verify(blob(ED)), false);
});

test('a line that does not parse is a UserError naming the input and line number', () => {
  const bad = (text: string, re: RegExp) =>
    assert.throws(
      () => makeHostVerifier(policy({ knownHosts: text }), 'h', 22),
      (e: unknown) => e instanceof UserError && re.test(e.message),
    );
  bad(`h ${ED}\n\nh ssh-ed25519`, /^input `known-hosts`:3: expected `hosts key-type base64-key`/);
  bad(ED, /^input `known-hosts`:1: .*public key without the host/);
  bad('h ssh-ed25519 not*base64', /:1: the key of type ssh-ed25519 is not base64/);
  bad(`h ssh-rsa ${ED.split(' ')[1]}`, /:1: the key data is a ssh-ed25519 key, but the line says ssh-rsa/);
  bad(`@nope h ${ED}`, /:1: unknown marker @nope/);
  bad(`|1|short|hash ${ED}`, /:1: malformed hashed host/);
});

test('a known-hosts line cut short or damaged is "malformed" with its line number and what to do, never "does not match"', () => {
  const refusal = (text: string): string => {
    try {
      makeHostVerifier(policy({ knownHosts: text }), 'h', 22);
    } catch (e) {
      assert.ok(e instanceof UserError, String(e));
      return e.message;
    }
    assert.fail(`accepted: ${text}`);
  };
  // Cut inside the base64 (a copy that lost its end), at every length that still decodes to a key type.
  const [type, data] = ED.split(' ') as [string, string];
  for (let n = 24; n < data.length; n += 4) {
    const message = refusal(`# pinned\nh ${type} ${data.slice(0, n)}`);
    assert.match(message, /^input `known-hosts`:2: the ssh-ed25519 key is cut short/, message);
    assert.match(message, /The line is malformed: copy it again, whole .* as ssh-keyscan prints it/);
    assert.doesNotMatch(message, /does not match|pin its new key/);
  }
  for (const key of [ECDSA, RSA]) {
    const [t, d] = key.split(' ') as [string, string];
    assert.match(refusal(`h ${t} ${d.slice(0, d.length - 8)}`), new RegExp(`:1: the ${t} key is cut short.*malformed`));
  }
  // A whole key with something glued on is damaged too.
  const glued = Buffer.concat([blob(ED), Buffer.from([0, 0, 0, 1, 7])]).toString('base64');
  assert.match(refusal(`h ${type} ${glued}`), /:1: the ssh-ed25519 key has 1 part\(s\) too many.*malformed/);
  // The other errors about a line say "malformed" as well.
  assert.match(refusal(`h ${type}`), /:1: expected `hosts key-type base64-key`.*The line is malformed/);
});

test('host-fingerprint: bare, comma- or space-separated, or whole ssh-keygen -lf lines', () => {
  const other = fingerprintOf(blob(OTHER_ED));
  assert.deepEqual(
    parseFingerprints(`${ED_FP}, ${other}\n ${other}=`).map((f) => f.fingerprint),
    [ED_FP, other, other],
  );
  const keygen = parseFingerprints(
    `256 ${ED_FP} [127.0.0.1]:2222 (ED25519)\n256 SHA256:scvVfBNR3LhPI9NGiD4UHiWNq19J64U3e1hZ1mz7j6k no comment (ECDSA)\n`,
  );
  assert.deepEqual(keygen, [
    { fingerprint: ED_FP, keyType: 'ssh-ed25519' },
    { fingerprint: 'SHA256:scvVfBNR3LhPI9NGiD4UHiWNq19J64U3e1hZ1mz7j6k', keyType: 'ecdsa-sha2-nistp256' },
  ]);
  assert.equal(accepts({ fingerprints: `256 ${ED_FP} h (ED25519)` }, 'any.host', 22, ED), true);
});

test('a malformed fingerprint is a UserError naming host-fingerprint', () => {
  const bad = (text: string, re: RegExp) =>
    assert.throws(
      () => makeHostVerifier(policy({ fingerprints: text }), 'h', 22),
      (e: unknown) => e instanceof UserError && re.test(e.message),
    );
  bad(`${ED_FP} SHA256:tooShort`, /^input `host-fingerprint`: "SHA256:tooShort" is not a SHA256 fingerprint/);
  bad('MD5:9f:5b:00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd', /^input `host-fingerprint`: .*is an MD5 fingerprint/);
  bad('ssh-ed25519', /^input `host-fingerprint`: "ssh-ed25519" is not a SHA256 fingerprint/);
});

test('a typed fingerprint puts its type first in the offer', () => {
  const v = makeHostVerifier(
    policy({ fingerprints: '256 SHA256:scvVfBNR3LhPI9NGiD4UHiWNq19J64U3e1hZ1mz7j6k h (ECDSA)' }),
    'h',
    22,
  );
  assert.equal(v.algorithms()[0], 'ecdsa-sha2-nistp256');
  assert.equal(v.canTryOtherKeyTypes(), false);
});

test('a bare fingerprint that does not match asks for other key types until none is left', () => {
  const v = makeHostVerifier(policy({ fingerprints: fingerprintOf(blob(RSA)) }), '10.1.1.1', 22);
  assert.equal(v.verify(blob(ED)), false);
  assert.equal(v.canTryOtherKeyTypes(), true);
  assert.ok(!v.algorithms().includes('ssh-ed25519'));
  assert.equal(v.verify(blob(ECDSA)), false);
  assert.match(
    v.refusal!,
    /does not match: the server offered ssh-ed25519 SHA256:mIGa\S+, ecdsa-sha2-nistp256 SHA256:\S+, which differs from the pinned key\(s\): SHA256:/,
  );
  assert.equal(v.verify(blob(RSA)), true);
  assert.equal(v.refusal, undefined);
  assert.deepEqual(v.accepted, { type: 'ssh-rsa', fingerprint: fingerprintOf(blob(RSA)) });
});

test('a mismatch names the offered key type and fingerprint and the pinned keys', () => {
  const v = makeHostVerifier(policy({ knownHosts: `[127.0.0.1]:2222 ${OTHER_ED}` }), '127.0.0.1', 2222);
  assert.equal(v.verify(blob(ED)), false);
  assert.equal(v.canTryOtherKeyTypes(), false, 'known_hosts keys are typed: another handshake cannot help');
  assert.match(
    v.refusal!,
    new RegExp(
      `^Host key of 127\\.0\\.0\\.1:2222 does not match: the server offered ssh-ed25519 ${ED_FP.replace(/[+/]/g, '\\$&')}, which differs`,
    ),
  );
  assert.match(v.refusal!, /ssh-ed25519 SHA256:\S+ \(known-hosts line 1\)/);
  assert.match(v.refusal!, /If the server was rebuilt/);
});

test('nothing pinned: refused with the commands that pin it', () => {
  const v = makeHostVerifier(policy({}), '127.0.0.1', 2222);
  assert.equal(v.verify(blob(ED)), false);
  assert.equal(
    v.refusal,
    'Host key of 127.0.0.1:2222 is not verified. Pin it with `known-hosts` (output of: ssh-keyscan -p 2222 127.0.0.1) or ' +
      '`host-fingerprint` (output of: ssh-keyscan -p 2222 127.0.0.1 | ssh-keygen -lf -) — the server offered ssh-ed25519 ' +
      `${ED_FP}. Only set insecure-ignore-host-key: true for throwaway servers.`,
  );
});

test('insecure accepts any key and says so in a warning', () => {
  const v = makeHostVerifier(policy({ insecure: true, knownHosts: `h ${OTHER_ED}` }), 'h', 22);
  assert.equal(v.verify(blob(ED)), true);
  assert.match(
    v.warning!,
    /NOT verified \(insecure-ignore-host-key: true\); the server offered ssh-ed25519 SHA256:mIGa/,
  );
});
