/**
 * Where a run reports to. The action writes through @actions/core (outputs, annotations, step
 * summary); the CLI prints for a person. The engine only sees this interface.
 */
export interface Reporter {
  info(message: string): void;
  warning(message: string): void;
  debug(message: string): void;
  group<T>(title: string, body: () => Promise<T>): Promise<T>;
  setOutput(name: string, value: string | number | boolean): void;
  /** Markdown appended to the step summary. */
  summary(markdown: string): Promise<void>;
  /** A transfer's progress line (report/progress.ts); `info` when absent. */
  progress?(line: string): void;
  /** Called once a transfer's progress lines end (the CLI clears its line on a terminal). */
  progressDone?(): void;
  /** How often progress lines come by default (REMOTE_FILES_PROGRESS_MS overrides it): 10 s when absent. */
  progressPeriodMs?: number;
}

/**
 * Paths and names come from servers and recipes. A line starting with `::` would be read by the runner
 * as a workflow command, so neutralise that (and other control characters) before anything is logged.
 */
export function safeText(text: string): string {
  return text
    .replace(/[\u0000-\u0008\u000b-\u001f\u007f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`)
    .replace(/\n/g, '\\n')
    .replace(/^::/, ': :');
}

/**
 * The one path every line printed takes, in the action's log and the CLI's (see the reporters in
 * main.ts and cli.ts): messages carry names a server or a repository chose, and some carry several of
 * them or several lines. A line starting with `::` (after blanks) would be read by the runner as a
 * workflow command (`::add-mask::Connected`, `::error::…`), and a control character (ESC starts a
 * terminal's escape sequence, CR rewrites the line) would be obeyed by a terminal. So each line is
 * neutralised alike: control characters but the tab shown as `\xNN`, a leading `::` broken up. Line
 * breaks stay (a command's output spans lines).
 */
export function logSafe(message: string): string {
  return message
    .split('\n')
    .map((line) =>
      line
        .replace(
          /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g,
          (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`,
        )
        .replace(/^(\s*)::/, '$1: :'),
    )
    .join('\n');
}
