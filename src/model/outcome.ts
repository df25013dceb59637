/** What happened to each entry of a backup or restore: computed by transfer/, shown by report/. */

/** What happened to one planned entry. Missing, denied, unchanged and changed are kept apart. */
export interface EntryOutcome {
  recipe: string;
  remote: string;
  local: string;
  status: 'changed' | 'unchanged' | 'missing' | 'denied' | 'partial';
  /** Files written (backup: into the data folder; restore: onto the server). */
  files: number;
  bytes: number;
  unchanged: number;
  deleted: number;
  /** Paths (stored paths for backup, server paths for restore) that could not be read or written. */
  denied: string[];
  notes: string[];
}

/** An entry's outcome before anything was done: unchanged, nothing counted. */
export function newOutcome(recipe: string, remote: string, local: string): EntryOutcome {
  return {
    recipe,
    remote,
    local,
    status: 'unchanged',
    files: 0,
    bytes: 0,
    unchanged: 0,
    deleted: 0,
    denied: [],
    notes: [],
  };
}

export interface RunTotals {
  files: number;
  bytes: number;
  unchanged: number;
  missing: number;
  denied: number;
  changed: boolean;
}

export function totals(outcomes: EntryOutcome[], changed: boolean): RunTotals {
  return {
    files: outcomes.reduce((n, o) => n + o.files, 0),
    bytes: outcomes.reduce((n, o) => n + o.bytes, 0),
    unchanged: outcomes.reduce((n, o) => n + o.unchanged, 0),
    missing: outcomes.filter((o) => o.status === 'missing').length,
    denied: outcomes.reduce((n, o) => n + (o.status === 'denied' ? Math.max(1, o.denied.length) : o.denied.length), 0),
    changed,
  };
}
