/**
 * Where the salvage lives between the backup before a deploy and the restore after it. The data folder
 * in the workspace (`<data-dir>/<domain>`) is the working copy; a store persists it and brings it back.
 * Stores see only that folder: they never talk to the server.
 */
export interface StoreContext {
  /** Absolute path of the repository checkout (GITHUB_WORKSPACE). */
  workspace: string;
  /** The data folder, relative to the workspace (input `data-dir`, e.g. `data`). */
  dataDir: string;
  domain: string;
  /** Absolute `<workspace>/<data-dir>/<domain>`: the only folder a store may write or persist. */
  domainDir: string;
  info(message: string): void;
  warning(message: string): void;
}

export interface SaveResult {
  /** Action outputs this store sets (e.g. `commit-sha`, `pushed`, `artifact-id`, `cache-key`). */
  outputs: Record<string, string>;
  /** One line for the step summary, e.g. "committed abc1234 and pushed to main". */
  summary: string;
}

export interface LoadResult {
  /** False when the store holds nothing for this domain (a first run, an expired artifact). */
  found: boolean;
  outputs: Record<string, string>;
  summary: string;
}

export interface Store {
  readonly name: 'commit' | 'artifact' | 'cache';
  /**
   * Persists the domain folder after a successful backup. `changed` says whether the salvage changed the
   * folder; a store may skip work when it did not (a commit), or persist anyway (an artifact per run).
   */
  save(ctx: StoreContext, changed: boolean): Promise<SaveResult>;
  /**
   * Fails, before anything connects, when the store cannot work here (`saving`: for a backup's save;
   * otherwise for a load): no git work tree, no remote to push to, no Actions runtime.
   */
  check?(ctx: StoreContext, saving: boolean): Promise<void>;
  /**
   * Before a backup connects: brings the stored copy the backup must build on into the workspace when
   * the checkout does not hold it (the commit store: the branch's tip). Returns lines for the log.
   */
  baseline?(ctx: StoreContext): Promise<string[]>;
  /** Replaces the domain folder with the newest stored copy (restore, verify, and a backup's baseline). */
  load(ctx: StoreContext): Promise<LoadResult>;
}
