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
