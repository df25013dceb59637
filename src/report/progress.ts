import { formatBytes } from './outcome-report.js';
import type { Reporter } from './reporter.js';

/**
 * What a transfer tells about its progress: the files and bytes it is about to move (called again as
 * more are planned, as a restore's `restores` are), the bytes as they go, each file once done.
 */
export interface Progress {
  planned(files: number, bytes: number): void;
  bytes(n: number): void;
  fileDone(): void;
}

/** For callers that show none (unit tests, a dry run). */
export const NO_PROGRESS: Progress = { planned: () => {}, bytes: () => {}, fileDone: () => {} };

/** How often a progress line is printed: ~10 s in a log, unless REMOTE_FILES_PROGRESS_MS says otherwise. */
export function progressPeriodMs(fallback = 10_000): number {
  const env = Number(process.env.REMOTE_FILES_PROGRESS_MS);
  return Number.isFinite(env) && env > 0 ? env : fallback;
}

/**
 * Runs `body` with a progress line every `periodMs` through the reporter (inside the caller's log group):
 * bytes and files done of those planned, the rate and an estimate of the time left. A transfer that ends
 * before the first tick prints nothing; nothing is printed before anything is planned.
 */
export async function withProgress<T>(
  out: Reporter,
  verb: 'received' | 'sent',
  body: (progress: Progress) => Promise<T>,
  periodMs = progressPeriodMs(out.progressPeriodMs),
): Promise<T> {
  let files = 0;
  let bytes = 0;
  let doneFiles = 0;
  let doneBytes = 0;
  let start = 0;
  const progress: Progress = {
    planned: (f, b) => {
      if (start === 0 && f > 0) start = Date.now();
      files += f;
      bytes += b;
    },
    bytes: (n) => {
      doneBytes += n;
    },
    fileDone: () => {
      doneFiles++;
    },
  };
  const show = out.progress ?? ((line: string) => out.info(line));
  const timer = setInterval(() => {
    if (start === 0) return;
    show(progressLine(verb, { doneBytes, bytes, doneFiles, files }, Date.now() - start));
  }, periodMs);
  timer.unref();
  try {
    return await body(progress);
  } finally {
    clearInterval(timer);
    out.progressDone?.();
  }
}

/** `received 12.0 MiB of 256.0 MiB (4%), 3 of 10 file(s), 2.1 MiB/s, about 1:52 left`. Pure. */
export function progressLine(
  verb: string,
  n: { doneBytes: number; bytes: number; doneFiles: number; files: number },
  elapsedMs: number,
): string {
  const secs = Math.max(elapsedMs / 1000, 0.001);
  const rate = n.doneBytes / secs;
  const pct = n.bytes > 0 ? Math.min(100, Math.floor((n.doneBytes / n.bytes) * 100)) : 0;
  const left = Math.max(0, n.bytes - n.doneBytes);
  const eta =
    left === 0 && n.doneFiles >= n.files
      ? 'all handed over, finishing'
      : rate > 0
        ? `about ${clock(Math.ceil(left / rate))} left`
        : 'time left unknown';
  return `${verb} ${formatBytes(n.doneBytes)} of ${formatBytes(n.bytes)} (${pct}%), ${n.doneFiles} of ${n.files} file(s), ${formatBytes(Math.round(rate))}/s, ${eta}`;
}

/** m:ss, or h:mm:ss from an hour on. */
export function clock(secs: number): string {
  const h = Math.floor(secs / 3600);
  const m = Math.floor((secs % 3600) / 60);
  const s = String(secs % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${s}` : `${m}:${s}`;
}
