import { safeText } from '../report/reporter.js';

/**
 * A fetched file must arrive with the size the listing gave it: the shrink guard (`max-delete`) judged
 * the backup on listed sizes, so a file that arrives emptied or truncated would slip an emptied stored
 * copy past it, and one that arrives larger (a 5-byte file sent as 1 GiB of compressed zeros) would
 * fill the disk. Either kind is never stored: the stored copy is kept and the run fails, naming it.
 * A larger one is cut off at once (its bytes are not even read); a smaller one is skipped.
 * Pure: sizes in, a verdict out.
 */
export type MemberSize = 'as-listed' | 'larger' | 'smaller';

export function judgeMemberSize(listed: number, announced: number): MemberSize {
  if (announced === listed) return 'as-listed';
  return announced > listed ? 'larger' : 'smaller';
}

/** "a (listed 5 B, sent 1073741824 B)": one file as the error names it. */
export function describeMember(remote: string, listed: number, announced: number): string {
  return `${safeText(remote)} (listed ${listed} B, sent ${announced} B)`;
}

export function memberSizeError(members: string[], cutOff: boolean): string {
  const shown = members.slice(0, 10).join(', ') + (members.length > 10 ? `, and ${members.length - 10} more` : '');
  return (
    `${members.length} file(s) arrived with another size than the server listed, and were not stored (their stored copy is kept): ${shown}. ` +
    (cutOff ? 'The transfer was cut off there. ' : '') +
    'A file that changed between the listing and the fetch does this (run the backup again); a server that is not honest does it every time'
  );
}
