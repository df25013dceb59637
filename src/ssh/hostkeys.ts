// Host key verification: which server keys the user pinned (`known-hosts`, `host-fingerprint`) and
// whether the key a server offers is one of them. Pure: no I/O, so every rule is unit-tested.
import { createHash, createHmac } from 'node:crypto';
import type { ServerHostKeyAlgorithm } from 'ssh2';
import { UserError } from '../errors.js';

export interface HostKeyPolicy {
  knownHosts: string;
  /** `host-fingerprint`: pins the target only. */
  fingerprints: string;
  /** `proxy-fingerprint`: pins the jump host only. A fingerprint never crosses over to the other host. */
  proxyFingerprints?: string;
  insecure: boolean;
}

/** Which server a verifier is for; each has its own fingerprint input. */
export type HostRole = 'target' | 'proxy';

/** The input that pins fingerprints for each role. */
export const FINGERPRINT_INPUT: Record<HostRole, string> = { target: 'host-fingerprint', proxy: 'proxy-fingerprint' };

/** A key a server offered: its type as the key blob names it (`ssh-rsa`, not `rsa-sha2-512`). */
export interface OfferedKey {
  type: string;
  fingerprint: string;
}

interface KnownHostsEntry {
  line: number;
  revoked: boolean;
  matches: (name: string) => boolean;
  keyType: string;
  key: Buffer;
}

/** What pins one host: its known_hosts keys (pinned or revoked) and every fingerprint given. */
interface HostPins {
  pinned: KnownHostsEntry[];
  revoked: KnownHostsEntry[];
  fingerprints: PinnedFingerprint[];
  /** Fingerprints given for the other host (target ↔ jump host): never accepted here, only named in a refusal. */
  otherFingerprints: string[];
  /** known-hosts has lines, just none for this host: the refusal then says so. */
  knownHostsForOthers: boolean;
}

interface PinnedFingerprint {
  fingerprint: string;
  /** Known when the input is `ssh-keygen -lf` output, whose lines end with the type, e.g. `(ED25519)`. */
  keyType?: string;
}

/** ssh2's host key algorithms per key type; the order within a type is the order we prefer them. */
const ALGORITHMS_BY_KEY_TYPE: Record<string, ServerHostKeyAlgorithm[]> = {
  'ssh-ed25519': ['ssh-ed25519'],
  'ecdsa-sha2-nistp256': ['ecdsa-sha2-nistp256'],
  'ecdsa-sha2-nistp384': ['ecdsa-sha2-nistp384'],
  'ecdsa-sha2-nistp521': ['ecdsa-sha2-nistp521'],
  'ssh-rsa': ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'],
  'ssh-dss': ['ssh-dss'],
};
/** ssh2's default offer (DSA is not in it: OpenSSH dropped it); pinned types are moved to the front. */
const DEFAULT_ALGORITHMS: ServerHostKeyAlgorithm[] = [
  'ssh-ed25519',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
  'rsa-sha2-512',
  'rsa-sha2-256',
  'ssh-rsa',
];

/** `SHA256:` + unpadded base64, exactly as `ssh-keygen -lf` prints it. */
export function fingerprintOf(key: Buffer): string {
  return 'SHA256:' + createHash('sha256').update(key).digest('base64').replace(/=+$/, '');
}

/** The type string an SSH public key blob starts with (uint32 length + name); undefined if malformed. */
export function keyTypeOf(blob: Buffer): string | undefined {
  if (blob.length < 4) return undefined;
  const len = blob.readUInt32BE(0);
  if (len === 0 || len > 64 || blob.length < 4 + len) return undefined;
  return blob.subarray(4, 4 + len).toString('latin1');
}

/** host:port for messages; an IPv6 address gets brackets so the port stays readable. */
export function endpointLabel(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** How known_hosts names a host: bare for port 22, `[host]:port` otherwise (OpenSSH's rule). */
export function hostPortName(host: string, port: number): string {
  const h = host.toLowerCase();
  return port === 22 ? h : `[${h}]:${port}`;
}

const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

/**
 * A line that cannot be read: nothing was compared with any server's key, so the message says the line
 * is malformed (never "does not match", which would invite pinning whatever the server offers now).
 */
function knownHostsError(line: number, detail: string): UserError {
  return new UserError(
    `input \`known-hosts\`:${line}: ${detail}. The line is malformed: copy it again, whole (one line per key, \`host key-type base64-key\`, as ssh-keyscan prints it), from where you pinned it`,
  );
}

/** Public key blobs by type: how many length-prefixed fields, and the size of the last one where it is fixed. */
const KEY_SHAPES: Record<string, { fields: number; last?: number }> = {
  'ssh-ed25519': { fields: 2, last: 32 },
  'ecdsa-sha2-nistp256': { fields: 3, last: 65 },
  'ecdsa-sha2-nistp384': { fields: 3, last: 97 },
  'ecdsa-sha2-nistp521': { fields: 3, last: 133 },
  'ssh-rsa': { fields: 3 },
  'ssh-dss': { fields: 5 },
};

/** Why a key blob is not a whole key (a line cut short, a character lost), or undefined. */
export function keyBlobProblem(blob: Buffer, type: string): string | undefined {
  const fields: Buffer[] = [];
  for (let at = 0; at < blob.length;) {
    const len = at + 4 <= blob.length ? blob.readUInt32BE(at) : -1;
    if (len < 0 || at + 4 + len > blob.length)
      return `the ${type} key is cut short (${blob.length} bytes, and more announced)`;
    fields.push(blob.subarray(at + 4, at + 4 + len));
    at += 4 + len;
  }
  const shape = KEY_SHAPES[type];
  if (!shape) return undefined;
  const last = fields[shape.fields - 1];
  if (fields.length < shape.fields || (shape.last !== undefined && last?.length !== shape.last))
    return `the ${type} key is cut short (${blob.length} bytes: not a whole ${type} key)`;
  if (fields.length > shape.fields) return `the ${type} key has ${fields.length - shape.fields} part(s) too many`;
  return undefined;
}

/** known_hosts text → entries for pinning/revocation, plus notes about lines that were ignored. */
export function parseKnownHosts(text: string): { entries: KnownHostsEntry[]; notes: string[] } {
  const entries: KnownHostsEntry[] = [];
  const notes: string[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const fields = line.split(/\s+/);
    let marker: string | undefined;
    if (fields[0]!.startsWith('@')) marker = fields.shift();
    if (marker !== undefined && marker !== '@revoked' && marker !== '@cert-authority') {
      throw knownHostsError(i + 1, `unknown marker ${marker} (known: @revoked, @cert-authority)`);
    }
    const entry = parseEntry(fields, i + 1, marker === '@revoked');
    if (marker === '@cert-authority') {
      notes.push(
        `\`known-hosts\` line ${i + 1}: @cert-authority is not supported; line ignored (pin the host's own key instead)`,
      );
    } else {
      entries.push(entry);
    }
  });
  return { entries, notes };
}

function parseEntry(fields: string[], line: number, revoked: boolean): KnownHostsEntry {
  if (fields.length < 3) {
    const hint =
      fields[0] !== undefined && keyTypeLooking(fields[0])
        ? ': this looks like a public key without the host in front; known_hosts lines are `[host]:port key-type base64-key`, as ssh-keyscan prints them'
        : '';
    throw knownHostsError(line, `expected \`hosts key-type base64-key\`${hint}`);
  }
  const [hosts, keyType, keyData] = fields as [string, string, string];
  if (!BASE64.test(keyData)) throw knownHostsError(line, `the key of type ${keyType} is not base64`);
  const key = Buffer.from(keyData, 'base64');
  const blobType = keyTypeOf(key);
  if (blobType !== keyType) {
    throw knownHostsError(
      line,
      `the key data is ${blobType ? `a ${blobType} key` : 'not an SSH public key'}, but the line says ${keyType}`,
    );
  }
  const problem = keyBlobProblem(key, keyType);
  if (problem) throw knownHostsError(line, problem);
  return { line, revoked, matches: hostMatcher(hosts, line), keyType, key };
}

function keyTypeLooking(field: string): boolean {
  return /^(ssh-|ecdsa-|sk-)/.test(field);
}

/** The host field: `|1|salt|hash` (hashed) or a comma-separated pattern list. */
function hostMatcher(hosts: string, line: number): (name: string) => boolean {
  if (hosts.startsWith('|')) return hashedMatcher(hosts, line);
  const patterns = hosts.split(',').filter((p) => p !== '');
  const positive = patterns.filter((p) => !p.startsWith('!')).map(patternRegExp);
  const negative = patterns.filter((p) => p.startsWith('!')).map((p) => patternRegExp(p.slice(1)));
  // OpenSSH's match_hostname: a matching negated pattern excludes the host whatever else matches.
  return (name) => !negative.some((re) => re.test(name)) && positive.some((re) => re.test(name));
}

/** `*` any run of characters, `?` exactly one; hostnames compare case-insensitively. */
function patternRegExp(pattern: string): RegExp {
  const body = pattern
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${body}$`, 'i');
}

/** `|1|base64(salt)|base64(HMAC-SHA1(salt, name))`, as `ssh-keygen -H` and HashKnownHosts write. */
function hashedMatcher(hosts: string, line: number): (name: string) => boolean {
  const m = /^\|1\|([^|]+)\|([^|]+)$/.exec(hosts);
  const salt = m && BASE64.test(m[1]!) ? Buffer.from(m[1]!, 'base64') : undefined;
  const hash = m && BASE64.test(m[2]!) ? Buffer.from(m[2]!, 'base64') : undefined;
  if (!salt || !hash || salt.length !== 20 || hash.length !== 20) {
    throw knownHostsError(line, 'malformed hashed host (expected |1|salt|hash, as ssh-keygen -H writes)');
  }
  return (name) => createHmac('sha1', salt).update(name.toLowerCase()).digest().equals(hash);
}

function fingerprintError(input: string, detail: string): UserError {
  return new UserError(`input \`${input}\`: ${detail}`);
}

/** `ssh-keygen -lf` output: `256 SHA256:… comment (ED25519)`. */
const KEYGEN_LINE = /^(\d+)\s+(\S+)\s.*\(([A-Z0-9-]+)\)$/;

/** Fingerprints separated by newlines, commas or spaces, or whole `ssh-keygen -lf` lines. */
export function parseFingerprints(text: string, input = FINGERPRINT_INPUT.target): PinnedFingerprint[] {
  const pins: PinnedFingerprint[] = [];
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const keygen = KEYGEN_LINE.exec(line);
    if (keygen) {
      const keyType = keyTypeFromKeygen(keygen[3]!, keygen[1]!);
      pins.push({ fingerprint: parseFingerprint(keygen[2]!, input), ...(keyType && { keyType }) });
      continue;
    }
    for (const token of line.split(/[\s,]+/).filter(Boolean))
      pins.push({ fingerprint: parseFingerprint(token, input) });
  }
  return pins;
}

function parseFingerprint(token: string, input: string): string {
  const m = /^SHA256:([A-Za-z0-9+/]{43})=?$/.exec(token);
  if (m) return `SHA256:${m[1]}`;
  const shown = token.length > 60 ? `${token.slice(0, 60)}…` : token;
  if (/^MD5:/i.test(token) || /^([0-9a-f]{2}:){15}[0-9a-f]{2}$/i.test(token)) {
    throw fingerprintError(input, `"${shown}" is an MD5 fingerprint; give the SHA256 one (ssh-keygen -lf prints it)`);
  }
  throw fingerprintError(
    input,
    `"${shown}" is not a SHA256 fingerprint (expected SHA256: and 43 base64 characters, as ssh-keygen -lf prints)`,
  );
}

function keyTypeFromKeygen(name: string, bits: string): string | undefined {
  switch (name) {
    case 'ED25519':
      return 'ssh-ed25519';
    case 'ECDSA':
      return `ecdsa-sha2-nistp${bits}`;
    case 'RSA':
      return 'ssh-rsa';
    case 'DSA':
      return 'ssh-dss';
    default:
      return undefined;
  }
}

function describe(k: OfferedKey): string {
  return `${k.type} ${k.fingerprint}`;
}

function pinCommands(host: string, port: number, role: HostRole): string {
  const scan = `ssh-keyscan -p ${port} ${host}`;
  return `\`known-hosts\` (output of: ${scan}) or \`${FINGERPRINT_INPUT[role]}\` (output of: ${scan} | ssh-keygen -lf -)`;
}

/**
 * Decides on the keys one server (host:port) offers. `verify` is ssh2's `hostVerifier`; after a refusal,
 * `refusal` says why in words the user can act on.
 *
 * ssh2 negotiates a single host key algorithm, so a server with several keys shows only one per
 * handshake. `algorithms()` puts the pinned key types first, which settles it for known_hosts lines and
 * `ssh-keygen -lf` lines; a bare fingerprint has no type, so after a refusal `canTryOtherKeyTypes()`
 * tells the caller to handshake again without the refused type, until a pin matches or none is left.
 */
export class HostVerifier {
  /** Every distinct key the server offered, in order (several when other key types were tried). */
  readonly offered: OfferedKey[] = [];
  accepted: OfferedKey | undefined;
  refusal: string | undefined;
  /** Set when the key was accepted without verification (insecure). */
  warning: string | undefined;
  private readonly refusedTypes = new Set<string>();
  private readonly label: string;

  constructor(
    private readonly host: string,
    private readonly port: number,
    private readonly insecure: boolean,
    private readonly pins: HostPins,
    /** Remarks about the inputs (ignored lines), for the log. */
    readonly notes: string[],
    private readonly role: HostRole = 'target',
  ) {
    this.label = `${role === 'proxy' ? 'jump host ' : ''}${endpointLabel(host, port)}`;
  }

  readonly verify = (key: Buffer): boolean => {
    const offered = { type: keyTypeOf(key) ?? 'unknown', fingerprint: fingerprintOf(key) };
    if (!this.offered.some((k) => k.fingerprint === offered.fingerprint)) this.offered.push(offered);
    if (this.insecure) {
      this.warning = `Host key of ${this.label} is NOT verified (insecure-ignore-host-key: true); the server offered ${describe(offered)}. Pin it with ${pinCommands(this.host, this.port, this.role)}.`;
      this.accepted = offered;
      return true;
    }
    const reason = this.judge(key, offered);
    if (reason === undefined) {
      this.accepted = offered;
      this.refusal = undefined;
      return true;
    }
    this.refusedTypes.add(offered.type);
    this.refusal = reason + this.crossedOver(offered);
    return false;
  };

  /** Host key algorithms to offer, pinned types first, without types already refused. */
  algorithms(): ServerHostKeyAlgorithm[] {
    const pinnedTypes = [
      ...this.pins.pinned.map((e) => e.keyType),
      ...this.pins.fingerprints.flatMap((f) => (f.keyType ? [f.keyType] : [])),
    ];
    const preferred = pinnedTypes.flatMap((t) => ALGORITHMS_BY_KEY_TYPE[t] ?? []);
    const refused = new Set<ServerHostKeyAlgorithm>(
      [...this.refusedTypes].flatMap((t) => ALGORITHMS_BY_KEY_TYPE[t] ?? []),
    );
    return [...new Set([...preferred, ...DEFAULT_ALGORITHMS])].filter((a) => !refused.has(a));
  }

  /** After a refusal: a bare fingerprint may belong to a key type the server has not shown yet. */
  canTryOtherKeyTypes(): boolean {
    return this.refusal !== undefined && this.pins.fingerprints.some((f) => !f.keyType) && this.algorithms().length > 0;
  }

  /** undefined = accept; otherwise the reason for refusing. */
  private judge(key: Buffer, offered: OfferedKey): string | undefined {
    const revoked = this.pins.revoked.find((e) => e.key.equals(key));
    if (revoked)
      return `Host key of ${this.label} is revoked: the server offered ${describe(offered)}, marked @revoked in \`known-hosts\` line ${revoked.line}.`;
    if (this.pins.pinned.length === 0 && this.pins.fingerprints.length === 0) return this.unpinnedMessage(offered);
    if (
      this.pins.pinned.some((e) => e.key.equals(key)) ||
      this.pins.fingerprints.some((f) => f.fingerprint === offered.fingerprint)
    )
      return undefined;
    return this.mismatchMessage();
  }

  /** A refused key that is pinned for the other host: say which input pins what. */
  private crossedOver(offered: OfferedKey): string {
    if (!this.pins.otherFingerprints.includes(offered.fingerprint)) return '';
    const other: HostRole = this.role === 'target' ? 'proxy' : 'target';
    return ` Its fingerprint is in \`${FINGERPRINT_INPUT[other]}\`, which pins the ${other === 'proxy' ? 'jump host' : 'target server'} only; the ${this.role === 'proxy' ? 'jump host' : 'target server'}'s key goes in \`${FINGERPRINT_INPUT[this.role]}\` (or \`known-hosts\`).`;
  }

  private unpinnedMessage(offered: OfferedKey): string {
    const why = this.pins.knownHostsForOthers
      ? `is not pinned: \`known-hosts\` has no line for ${hostPortName(this.host, this.port)} (a port other than 22 is written [host]:port).`
      : 'is not verified.';
    return `Host key of ${this.label} ${why} Pin it with ${pinCommands(this.host, this.port, this.role)} — the server offered ${describe(offered)}. Only set insecure-ignore-host-key: true for throwaway servers.`;
  }

  private mismatchMessage(): string {
    const pins = [
      ...this.pins.pinned.map((e) => `${e.keyType} ${fingerprintOf(e.key)} (known-hosts line ${e.line})`),
      ...this.pins.fingerprints.map((f) => f.fingerprint),
    ];
    const shown = pins.length > 6 ? [...pins.slice(0, 6), `… ${pins.length - 6} more`] : pins;
    return (
      `Host key of ${this.label} does not match: the server offered ${this.offered.map(describe).join(', ')}, ` +
      `which differs from the pinned key(s): ${shown.join(', ')}. ` +
      `If the server was rebuilt, pin its new key with ${pinCommands(this.host, this.port, this.role)}.`
    );
  }
}

/**
 * The verifier for one server. Parses the inputs (a malformed one is a UserError naming it), keeps the
 * known_hosts entries for this host:port and the fingerprints of this server's role: `host-fingerprint`
 * for the target, `proxy-fingerprint` for the jump host. Fingerprints name no host, so one list for
 * both would let a key pinned for the jump host authenticate the target (and the reverse).
 */
export function makeHostVerifier(
  policy: HostKeyPolicy,
  host: string,
  port: number,
  role: HostRole = 'target',
): HostVerifier {
  const { entries, notes } = parseKnownHosts(policy.knownHosts);
  const texts: Record<HostRole, string> = { target: policy.fingerprints, proxy: policy.proxyFingerprints ?? '' };
  const fingerprints = parseFingerprints(texts[role], FINGERPRINT_INPUT[role]);
  const other: HostRole = role === 'target' ? 'proxy' : 'target';
  let otherFingerprints: string[] = [];
  try {
    otherFingerprints = parseFingerprints(texts[other], FINGERPRINT_INPUT[other]).map((f) => f.fingerprint);
  } catch {
    // Malformed: the other host's verifier reports it; here it only feeds a hint.
  }
  const name = hostPortName(host, port);
  const forHost = entries.filter((e) => e.matches(name));
  const pinned = forHost.filter((e) => !e.revoked);
  const pins = {
    pinned,
    revoked: forHost.filter((e) => e.revoked),
    fingerprints,
    otherFingerprints,
    knownHostsForOthers: pinned.length === 0 && entries.some((e) => !e.revoked),
  };
  return new HostVerifier(host, port, policy.insecure, pins, notes, role);
}
