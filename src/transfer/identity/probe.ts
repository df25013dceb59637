import { createHash, randomBytes } from 'node:crypto';
import { EXIT_ON_SIGNALS, shCommand } from '../shell.js';
import type { ShellRunner } from '../shell.js';
import type { ServerSeen } from './identity.js';

/**
 * The server side of identity.ts: what identifies the instance, read with one command, and the marker
 * remote-files leaves on it — a random instance id, and after a restore the id of the salvage put back.
 * It lives in the login user's ~/.local/state/remote-files/<domain>, read and written as that user
 * (never with sudo: the same place whether `sudo` is on or not, and nothing written as root), and goes
 * with a rebuild. Everything the server answers is input; only exact forms are taken.
 */

const MARKER_DIR = `d="\${HOME:?}/.local/state/remote-files"`;

/** $1: the domain. Prints `machine <id>` and the marker's valid lines; never follows a link to the marker. */
const READ_SCRIPT = `LC_ALL=C; export LC_ALL
${MARKER_DIR}
m=$(cat /etc/machine-id 2>/dev/null || cat /var/lib/dbus/machine-id 2>/dev/null)
printf 'machine %s\\n' "$m"
f="$d/$1"
if [ ! -L "$d" ] && [ ! -L "$f" ] && [ -f "$f" ]; then head -c 4096 "$f"; fi`;

/**
 * $1 domain, $2 instance id, $3 the restored salvage's id and $4 its time, or empty. Temp file, then
 * rename: never half a marker.
 */
export const WRITE_SCRIPT = `set -e; LC_ALL=C; export LC_ALL; umask 077
${MARKER_DIR}
if [ -L "$d" ]; then echo "$d is a symbolic link: not writing through it" >&2; exit 3; fi
mkdir -p "$d"
t=$(mktemp "$d/.$1.XXXXXX")
trap 'rm -f -- "$t"' EXIT
${EXIT_ON_SIGNALS}
{ printf 'instance %s\\n' "$2"; if [ -n "$3" ]; then printf 'restored-from %s %s\\n' "$3" "$4"; fi; } > "$t"
mv -f "$t" "$d/$1"`;

const HEX32 = /^[0-9a-f]{32}$/;
const ISO_UTC = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/;

/** Parses READ_SCRIPT's answer. Pure. */
export function parseIdentity(output: string, domain: string, hostKey: string | undefined): ServerSeen {
  const seen: ServerSeen = { probed: true, ...(hostKey && { hostKey }) };
  for (const line of output.split('\n')) {
    const [key, value, extra, more] = line.trim().split(' ');
    if (value === undefined || more !== undefined) continue;
    if (key === 'restored-from' && HEX32.test(value)) {
      seen.restoredFrom = value;
      if (extra !== undefined && ISO_UTC.test(extra)) seen.restoredAt = extra;
      continue;
    }
    if (extra !== undefined) continue;
    if (key === 'machine' && /^[0-9A-Za-z-]{8,64}$/.test(value))
      seen.machine = createHash('sha256').update(`${domain}\n${value}`).digest('hex');
    else if (key === 'instance' && HEX32.test(value)) seen.instance = value;
  }
  return seen;
}

/** Where the scripts run: the login user's shell, when the account has one (see Transport.canRunCommands). */
export interface MarkerShell {
  shell: ShellRunner;
  canRunCommands: boolean;
}

/** The marker's read, started (e.g. while the transport is chosen: one round trip less); see probeServer. */
export type MarkerRead = ReturnType<ShellRunner['exec']>;

/** Starts reading what identifies the server (READ_SCRIPT); probeServer takes the answer. */
export function readMarker(shell: ShellRunner, domain: string): MarkerRead {
  const r = shell.exec(shCommand(READ_SCRIPT, [domain], false), { maxStdout: 16384 });
  r.catch(() => undefined); // Not waited for where the account runs no commands.
  return r;
}

/**
 * What the server is now; with no shell (SFTP only) the host key alone. `started`: the read, begun
 * before it was known whether the account runs commands.
 */
export async function probeServer(
  on: MarkerShell,
  domain: string,
  hostKey: string | undefined,
  started?: MarkerRead,
): Promise<ServerSeen> {
  if (!on.canRunCommands) return { probed: false, ...(hostKey && { hostKey }) };
  // Started early, it may have been refused where the later one is not (a server allowing one session
  // channel at a time): then it is asked again, now.
  const r = await (started?.catch(() => readMarker(on.shell, domain)) ?? readMarker(on.shell, domain));
  // A script that could not run (no $HOME, no head) saw nothing: that is not "the marker is gone".
  if (r.code !== 0)
    return {
      probed: false,
      ...(hostKey && { hostKey }),
      unreadable: r.stderr.trim().slice(0, 300) || `exit ${r.code}`,
    };
  return parseIdentity(r.stdout.toString('utf8'), domain, hostKey);
}

export function newId(): string {
  return randomBytes(16).toString('hex');
}

/** Leaves the marker; undefined when it was written, else why not (the caller warns). */
export async function leaveMarker(
  on: MarkerShell,
  domain: string,
  instance: string,
  restoredFrom: { id: string; at: string } | undefined,
): Promise<string | undefined> {
  if (!on.canRunCommands) return 'the account runs no commands (SFTP only)';
  const r = await on.shell.exec(
    shCommand(WRITE_SCRIPT, [domain, instance, restoredFrom?.id ?? '', restoredFrom?.at ?? ''], false),
    {
      maxStdout: 16384,
    },
  );
  return r.code === 0 ? undefined : r.stderr.trim().slice(0, 500) || `exit ${r.code}`;
}
