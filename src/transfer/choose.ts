import { HostileServerError, UserError } from '../errors.js';
import { safeText } from '../report/reporter.js';
import { OUTPUT_CAP } from '../ssh/session.js';
import {
  chooseCodec,
  nodeHasZstd,
  parseServerCodecs,
  FAST_LINK_RTT_MS,
  type CompressionSetting,
} from './compression.js';
import { LIST_SCRIPT, PROBE_SCRIPT } from './tar/remote-scripts.js';
import { shCommand, type ShellRunner } from './shell.js';
import { afterMark, ListingGuard } from './tar/listing-guard.js';
import { SftpTransport } from './sftp/transport.js';
import { TarTransport } from './tar/transport.js';
import type { Transport } from './types.js';
import type { SFTPWrapper } from 'ssh2';

export interface Session extends ShellRunner {
  /** The target's verified host key, `<type> SHA256:<base64>`. */
  readonly hostKey?: string;
  sftp(): Promise<SFTPWrapper>;
  /** Why the connection is gone, once it is (names host and cause). */
  lostError?(): Error | undefined;
  /** The link's round trip in ms (see SshSession.roundTrip). */
  roundTrip?(until?: Promise<unknown>): Promise<number | undefined>;
  /** Turns the SSH layer's compression on (see SshSession.compressFromNowOn). */
  compressFromNowOn?(): boolean;
}

/** What the choice depends on (the inputs of the same names). */
export interface TransportOptions {
  transport: 'auto' | 'tar' | 'sftp';
  compression: CompressionSetting;
  sudo: boolean;
  /** SFTP requests in flight. */
  concurrency: number;
  /** The login, named when `sudo -n` fails. */
  ssh: { username: string };
}

export interface Chosen {
  transport: Transport;
  /** uid the server side runs as (0 with sudo); -1 when unknown (SFTP). */
  uid: number;
}

/**
 * `tar` needs a shell with GNU find and GNU tar; `sftp` needs only the SFTP subsystem. `auto` asks the
 * server which it has: an SFTP-only account (ForceCommand internal-sftp) answers the probe with
 * nothing usable, so it gets SFTP.
 */
export async function chooseTransport(
  session: Session,
  s: TransportOptions,
  prefetch?: string[],
  whileListing?: () => void,
): Promise<Chosen> {
  // `auto` measures the link while the probe runs (see SshSession.roundTrip): no round trip of its own.
  let probed: (v?: unknown) => void = () => undefined;
  const probeDone = new Promise((done) => (probed = done));
  const rtt =
    s.compression === 'auto' && session.roundTrip
      ? session.roundTrip(s.transport === 'sftp' ? undefined : probeDone)
      : Promise.resolve(undefined);
  if (s.transport === 'sftp') return { transport: await sftpTransport(session, s, await rtt), uid: -1 };
  // With `prefetch`, the listing of those paths rides along with the probe: one command, not two (on a
  // link with 10 ms each way, one exec costs about 60 ms of round trips). Never with sudo, whose
  // listing must run as root, after the sudo check.
  const ahead = prefetch && !s.sudo ? prefetch : undefined;
  const command = ahead
    ? shCommand(
        `${PROBE_SCRIPT}
printf '${LISTING_MARK}'
${LIST_SCRIPT}`,
        ahead,
        false,
      )
    : PROBE_SCRIPT;
  // A refused exec means no shell; a connection lost meanwhile means nothing about the account.
  // `whileListing` (reading the stored manifest) runs while the server lists: a listing of 20,000
  // files takes the server ~80 ms, and this side would only wait for it.
  // The probe's own answer is a few lines: a server that floods it is cut at OUTPUT_CAP (a listing
  // riding along is data, and bounded by what was asked).
  const probe = await session
    .exec(command, {
      stdin: '',
      ...(ahead
        ? {
            ...(whileListing && { started: whileListing }),
            check: afterMark(LISTING_MARK, OUTPUT_CAP, new ListingGuard(ahead.length, { remotes: ahead }), isGnu),
          }
        : { maxStdout: OUTPUT_CAP }),
    })
    .catch((err: unknown) => {
      if (session.lostError?.() || err instanceof HostileServerError) throw err;
      return null;
    });
  probed();
  const mark = probe ? probe.stdout.indexOf(LISTING_MARK) : -1;
  const text = probe ? probe.stdout.subarray(0, mark < 0 ? undefined : mark).toString('utf8') : '';
  const gnu = isGnu(text);
  if (!gnu) {
    if (s.transport === 'tar') {
      throw new UserError(
        `transport: tar needs a shell with GNU find and GNU tar on the server, and the probe found ${probe ? `"${safeText(text.trim() || probe.stderr.trim())}"` : 'no shell'}; use transport: sftp`,
      );
    }
    if (s.sudo)
      throw new UserError(
        'input `sudo`: true needs a shell with GNU find and tar on the server; this account has none (SFTP only?)',
      );
    return { transport: await sftpTransport(session, s, await rtt), uid: -1 };
  }
  const wire = chooseCodec(s.compression, parseServerCodecs(text), nodeHasZstd(), await rtt);
  const codec = { codec: wire.codec, adaptive: s.compression === 'auto', reason: wire.reason };
  const uid = Number(text.trim().split('\n').at(-1));
  if (s.sudo) {
    const check = await session.exec(shCommand('id -u', [], true), { maxStdout: OUTPUT_CAP });
    if (check.code !== 0 || check.stdout.toString().trim() !== '0') {
      throw new UserError(
        `input \`sudo\`: \`sudo -n\` failed for ${s.ssh.username} (${safeText(check.stderr.trim() || 'no output')}); it needs passwordless sudo`,
      );
    }
    return { transport: new TarTransport(session, true, undefined, codec), uid: 0 };
  }
  const listed =
    ahead && probe && mark >= 0
      ? {
          remotes: ahead,
          stdout: probe.stdout.subarray(mark + LISTING_MARK.length),
          code: probe.code,
          stderr: probe.stderr,
        }
      : undefined;
  return { transport: new TarTransport(session, false, listed, codec), uid };
}

/**
 * SFTP has no shell to compress with: the SSH layer's zlib is turned on instead (a key re-exchange
 * offering it), unless compression is `none`, or `auto` on a fast link (see FAST_LINK_RTT_MS).
 */
async function sftpTransport(session: Session, s: TransportOptions, rtt: number | undefined): Promise<SftpTransport> {
  const fast = s.compression === 'auto' && (rtt === undefined || rtt < FAST_LINK_RTT_MS);
  const zlib = s.compression !== 'none' && !fast && session.compressFromNowOn?.() === true;
  const compression = zlib
    ? 'SSH zlib'
    : s.compression === 'none'
      ? 'compression: none'
      : fast
        ? `auto: fast link (round trip ${rtt === undefined ? 'not measured' : `${rtt.toFixed(1)} ms`}), sent as it is`
        : 'SSH compression unavailable';
  return new SftpTransport(await session.sftp(), {
    concurrency: s.concurrency,
    lost: () => session.lostError?.(),
    compression,
  });
}

/** The probe found what the tar transport needs: GNU find and GNU tar. */
function isGnu(probe: string): boolean {
  return /GNU findutils/.test(probe) && /GNU tar/.test(probe);
}

/** Ends the probe's output and starts the listing's when both run as one command. */
const LISTING_MARK = '\nremote-files listing:\n';
