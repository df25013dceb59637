import { HostileServerError } from '../errors.js';
import { safeText } from '../report/reporter.js';

/**
 * How big one run's listing of the server may grow, over tar and SFTP alike. A listing is kept whole
 * until it is parsed, and every record then becomes a file the backup plans, fetches and records, so
 * what a server sends must end somewhere, however well-formed each record is: an endless stream of
 * unique `R f 1 …` records passes every check of its shape.
 *
 * The caps sit where no run could finish anyway. A record takes about 90 bytes of listing and as much
 * again once parsed (measured: 1 million records with 40-byte paths); a whole backup peaks at about
 * 180 MB for 50,000 files (README, "Performance"), some 2 KB a file, so 10 million files would need
 * some 20 GB, beyond any hosted runner; and past 16.7 million files in one entry the parser's own
 * set of names reaches V8's limit for a Map (a flood of 512 MiB of records failed there, after 9 minutes
 * and gigabytes). A server with millions of files is listed. A flooding one is refused as its records
 * arrive, before any is parsed: over tar it costs at most the bytes it sent up to a cap (short records
 * reach the records cap at about 280 MB); over SFTP, where ssh2 hands over each name as an object of a
 * few hundred bytes, the cap is lower (SFTP_LISTING_CAPS).
 */
export const MAX_LISTED_RECORDS = 10_000_000;
/** The listing's bytes (over SFTP: its names), about what 10 million records of real paths take. */
export const MAX_LISTING_BYTES = 2 ** 30;

export interface ListingCaps {
  records: number;
  bytes: number;
}
export const LISTING_CAPS: ListingCaps = { records: MAX_LISTED_RECORDS, bytes: MAX_LISTING_BYTES };
/**
 * Over SFTP each record arrives as an object of a few hundred bytes: at 10 million that is some 3 GB,
 * past the heap Node gives itself on a 7 GB runner, so a flood would end the action out of memory
 * before the cap refused it. 2 million records (~600 MB) is still more than a backup of an SFTP-only
 * account could finish (~2 KB a file).
 */
export const SFTP_LISTING_CAPS: ListingCaps = { records: 2_000_000, bytes: MAX_LISTING_BYTES };

/** Counts a listing's records and bytes as they arrive; refuses the one past either cap. */
export class ListingBudget {
  private records = 0;
  private bytes = 0;

  constructor(private readonly caps: ListingCaps = LISTING_CAPS) {}

  /** `where`: the entry or folder being listed, for the message (called only when refusing). */
  take(records: number, bytes: number, where: () => string): void {
    this.records += records;
    this.bytes += bytes;
    if (this.records > this.caps.records)
      throw tooLarge(where(), `more than ${this.caps.records.toLocaleString('en')} files and folders`);
    if (this.bytes > this.caps.bytes) throw tooLarge(where(), `more than ${sizeOf(this.caps.bytes)} of listing`);
  }
}

function tooLarge(where: string, what: string): HostileServerError {
  return new HostileServerError(
    `the server's listing grew past its cap at ${safeText(where)}: ${what}, more than any run can back up (README, "Security model"); refusing it, nothing was written`,
  );
}

function sizeOf(bytes: number): string {
  return bytes >= 2 ** 30 && bytes % 2 ** 30 === 0
    ? `${bytes / 2 ** 30} GiB`
    : bytes >= 2 ** 20 && bytes % 2 ** 20 === 0
      ? `${bytes / 2 ** 20} MiB`
      : `${bytes} bytes`;
}
