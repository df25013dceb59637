import { HostileServerError } from '../../errors.js';
import { safeText } from '../../report/reporter.js';
import { LISTING_CAPS, ListingBudget, type ListingCaps } from '../listing-cap.js';

/**
 * Reads LIST_SCRIPT's output as it arrives, token by token, and refuses it at the first thing that
 * is not a listing, before it is kept: a server answering with 512 MiB of junk took the action to
 * 1.15 GB. What it lets through is bounded by entries, not by what the server sends: each token has
 * a size limit for its place (a flag, a number, a name, a path), every record is one of the entries
 * (at most `expected` entries, each `E` then `M`, `D` or records), and the owner names at the end are
 * at most two per record. Records and bytes as a whole are held to the listing caps (listing-cap.ts):
 * well-formed records are no less a flood. parseListing then reads the whole of it exactly; this only
 * bounds it.
 */

/** Longest token of each kind, in bytes. A path: Linux's PATH_MAX is 4096; a relative one nests deeper. */
const LIMITS = { flag: 1, number: 32, name: 256, path: 64 * 1024 } as const;
type Kind = keyof typeof LIMITS;

/** The record's tokens after its flag: type, size, mtime, mode, uid, gid, user, group, rel, target. */
const RECORD: Kind[] = ['flag', 'number', 'number', 'number', 'number', 'number', 'name', 'name', 'path', 'path'];

type State =
  | { at: 'top' } // E or N expected
  | { at: 'entry' } // after E: M, D or a record's flag
  | { at: 'record'; field: number }
  | { at: 'after-record' } // E, N or another record's flag
  | { at: 'names'; field: number };

export class ListingGuard {
  private state: State = { at: 'top' };
  /** Bytes of the token being read, and its first bytes (enough to check a flag). */
  private length = 0;
  private head = '';
  private entries = 0;
  private records = 0;
  private names = 0;
  private readonly budget: ListingBudget;
  private readonly remotes: readonly string[];

  /** `remotes`: the paths asked for, to name the entry a refusal stops at. */
  constructor(
    private readonly expected: number,
    opts: { remotes?: readonly string[]; caps?: ListingCaps } = {},
  ) {
    this.remotes = opts.remotes ?? [];
    this.budget = new ListingBudget(opts.caps ?? LISTING_CAPS);
  }

  /** Checks the next bytes of the listing; throws at the first that cannot be one. */
  feed(chunk: Buffer): void {
    this.budget.take(0, chunk.length, () => this.where());
    let from = 0;
    while (from < chunk.length) {
      const nul = chunk.indexOf(0, from);
      const end = nul < 0 ? chunk.length : nul;
      this.length += end - from;
      if (this.head.length < 2) this.head += chunk.toString('latin1', from, Math.min(end, from + 2));
      if (this.length > LIMITS[this.kind()]) this.refuse('a field far longer than any listing holds');
      if (nul < 0) return;
      this.token(this.head.slice(0, this.length));
      this.length = 0;
      this.head = '';
      from = nul + 1;
    }
  }

  /** What the token being read must be, for its size limit. */
  private kind(): Kind {
    const s = this.state;
    if (s.at === 'record') return RECORD[s.field]!;
    if (s.at === 'names') return s.field === 2 ? 'name' : 'number';
    return 'flag';
  }

  /** A whole token: `head` is its first bytes (the whole of it when short). */
  private token(head: string): void {
    const s = this.state;
    const flag = this.length === 1 ? head : '';
    switch (s.at) {
      case 'top':
      case 'after-record':
        if (flag === 'E') return this.entry();
        if (flag === 'N') return void (this.state = { at: 'names', field: 0 });
        if (s.at === 'after-record' && (flag === 'R' || flag === 'U')) return this.record();
        return this.refuse(`"${safeText(head)}" where an entry or the owner names were expected`);
      case 'entry':
        if (flag === 'M' || flag === 'D') return void (this.state = { at: 'top' });
        if (flag === 'R' || flag === 'U') return this.record();
        return this.refuse(`"${safeText(head)}" where an entry's first record was expected`);
      case 'record':
        this.state = s.field + 1 < RECORD.length ? { at: 'record', field: s.field + 1 } : { at: 'after-record' };
        return;
      case 'names':
        if (s.field === 0) {
          if (flag !== 'u' && flag !== 'g')
            return this.refuse(`"${safeText(head)}" where an owner or group was expected`);
          if (++this.names > 2 * this.records + 16) return this.refuse('more owner names than its files have owners');
        }
        this.state = { at: 'names', field: (s.field + 1) % 3 };
        return;
    }
  }

  private entry(): void {
    if (++this.entries > this.expected) this.refuse(`more than the ${this.expected} entries asked for`);
    this.state = { at: 'entry' };
  }

  private record(): void {
    this.records++;
    this.budget.take(1, 0, () => this.where());
    this.state = { at: 'record', field: 0 };
  }

  /** The entry being listed, as asked for (its number when the paths were not given). */
  private where(): string {
    if (this.state.at === 'names') return 'the owner names at its end';
    const at = Math.max(this.entries, 1);
    return this.remotes[at - 1] ?? `entry ${at} of ${this.expected}`;
  }

  private refuse(what: string): never {
    throw new HostileServerError(
      `the server's listing holds ${what} (after ${this.records} record(s)); refusing it, nothing was written`,
    );
  }
}

/**
 * A guard for output that starts with something else (the transport probe's answer) up to `mark`:
 * that part may be at most `before` bytes, the rest is the listing. When the probe's part does not
 * `qualify` (a server without GNU find and tar: its listing is never used, SFTP takes over), the rest
 * is not checked but dropped: returns false for what is not to be kept.
 */
export function afterMark(
  mark: string,
  before: number,
  guard: ListingGuard,
  qualify: (probe: string) => boolean,
): (chunk: Buffer) => boolean {
  let seen = Buffer.alloc(0);
  let state: 'probe' | 'listing' | 'dropped' = 'probe';
  return (chunk) => {
    if (state === 'dropped') return false;
    if (state === 'listing') {
      guard.feed(chunk);
      return true;
    }
    seen = Buffer.concat([seen, chunk]);
    const at = seen.indexOf(mark);
    if (at < 0) {
      if (seen.length > before + mark.length)
        throw new HostileServerError('the server answered the probe with far more than a probe says; refusing it');
      return true;
    }
    if (!qualify(seen.subarray(0, at).toString('utf8'))) {
      state = 'dropped';
      return true; // this chunk holds the probe's answer; what follows is not kept
    }
    state = 'listing';
    guard.feed(seen.subarray(at + mark.length));
    return true;
  };
}
