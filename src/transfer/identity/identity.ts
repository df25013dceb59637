import type { SalvageRecord, ServerRecord } from '../manifest/types.js';

/**
 * Which server a backup is talking to, compared with the one the stored salvage came from. The moment
 * this action exists for — a server rebuilt because it failed or was compromised — is also when a
 * backup is most dangerous: a re-run after a failed deploy reaches the *rebuilt* server, and salvaging
 * its fresh state would replace the good salvage. Pure: the values come from identity/probe.ts.
 */

/** What the backup saw on the server now. */
export interface ServerSeen extends ServerRecord {
  /** The salvage id our restore left in the marker, when the server was restored by us. */
  restoredFrom?: string;
  /** When that salvage was made (ISO 8601, UTC), as the restore wrote it. */
  restoredAt?: string;
  /** False when no command could run (SFTP only), or the probe failed: only the host key was seen. */
  probed: boolean;
  /** Why the probe saw nothing, when it ran and failed. */
  unreadable?: string;
}

export type ServerVerdict =
  /** Nothing recorded yet (a first backup, or a salvage an older version made). */
  | { kind: 'first' }
  | { kind: 'same' }
  /** Not the server of the last backup, but one our restore put this very salvage on: its successor. */
  | { kind: 'restored' }
  | { kind: 'different'; changes: string[] };

export function judgeServer(
  recorded: ServerRecord | undefined,
  salvage: SalvageRecord | undefined,
  seen: ServerSeen,
): ServerVerdict {
  if (!recorded) return { kind: 'first' };
  // What the machine itself says comes first: a rebuild that kept the login's home (and so the marker)
  // still has a new machine id, and usually new host keys.
  const changes: string[] = [];
  // Keys of different types say nothing about each other: a server offers several, the pin picks one.
  const sameType = (a: string, b: string) => a.split(' ')[0] === b.split(' ')[0];
  if (recorded.hostKey && seen.hostKey && sameType(recorded.hostKey, seen.hostKey) && recorded.hostKey !== seen.hostKey)
    changes.push(`its host key changed (${recorded.hostKey} then, ${seen.hostKey} now)`);
  if (seen.probed && recorded.machine && seen.machine && recorded.machine !== seen.machine)
    changes.push('its /etc/machine-id changed');
  const restoredHere =
    seen.probed &&
    salvage !== undefined &&
    ((seen.restoredFrom !== undefined && seen.restoredFrom === salvage.id) ||
      // Restored from a salvage made after the stored one (kept in another store or branch): what the
      // server holds is newer than what a backup would replace, so nothing is lost by taking it.
      (seen.restoredAt !== undefined && seen.restoredAt > salvage.at));
  const sameMarker = seen.probed && recorded.instance !== undefined && seen.instance === recorded.instance;
  if (changes.length === 0 && sameMarker) return { kind: 'same' };
  // Our restore put this salvage (or a newer one) on it: its successor, whatever else changed.
  if (restoredHere) return { kind: 'restored' };
  if (seen.probed && !sameMarker) {
    if (seen.restoredFrom) {
      changes.push(
        `it was restored from another, older salvage (${seen.restoredFrom.slice(0, 8)}${seen.restoredAt ? `, made ${seen.restoredAt}` : ''}) than the stored one (${salvage ? `${salvage.id.slice(0, 8)}, made ${salvage.at}` : 'which has no id'})`,
      );
    } else if (recorded.instance && !seen.instance) {
      changes.push('the marker remote-files left on it at the last backup is gone');
    } else if (recorded.instance && seen.instance !== recorded.instance) {
      changes.push('it holds another remote-files marker than at the last backup');
    }
  }
  return changes.length > 0 ? { kind: 'different', changes } : { kind: 'same' };
}

/** What the manifest records for the server now: what was seen, and what could not be seen carried over. */
export function serverRecord(
  recorded: ServerRecord | undefined,
  seen: ServerSeen,
  instance: string | undefined,
): ServerRecord {
  if (!seen.probed) return { ...recorded, ...(seen.hostKey && { hostKey: seen.hostKey }) };
  return {
    ...(seen.hostKey && { hostKey: seen.hostKey }),
    ...(seen.machine && { machine: seen.machine }),
    ...(instance && { instance }),
  };
}

/** The refusal: what changed, what it means, and the ways on. */
export function newServerMessage(changes: string[], salvage: SalvageRecord | undefined): string {
  return (
    `refusing the backup, nothing was written and the stored salvage${salvage ? ` (made ${salvage.at})` : ''} is untouched: this is not the server it came from: ${changes.join('; ')}. ` +
    'A server rebuilt before this backup looks like this (a re-run after a failed deploy reaches the rebuilt server): backing it up would replace the good salvage with its fresh state. ' +
    'Restore the stored salvage onto it instead; set `new-server: skip` to let the workflow go on to the restore without a backup, or `new-server: allow` to back up this server on purpose'
  );
}
