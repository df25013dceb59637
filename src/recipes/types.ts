/** One `restores` entry as a recipe declares it: put the salvage `from` at `to`. */
export interface RestoreSpec {
  to: string;
  from: string;
  owner?: string;
  /** Octal mode as a string, always four digits: "0750". */
  mode?: string;
}

/**
 * A recipe as read from its file, hooks evaluated with the run's install dir and domain, template
 * placeholders not yet resolved. `remoteFiles` is null when the recipe has no `remote_files` hook.
 */
export interface RawRecipe {
  name: string;
  /** Workspace-relative path of the file it was read from. */
  file: string;
  /** `remote => local` pairs in declaration order; a repeated remote keeps its last local (hash semantics). */
  remoteFiles: Array<[remote: string, local: string]> | null;
  datadirs: string[];
  skip: string[];
  prepare: string[];
  restores: RestoreSpec[];
  /** Shell commands run on the server before a restore writes anything, and after it (absent: none). */
  beforeRestore?: string[];
  afterRestore?: string[];
}

/** What a recipe hook is called with. */
export interface HookContext {
  installDir: string;
  domain: string;
  /** The `vars` input: with install_dir and domain, the configuration `restores(%opts)` receives. */
  vars?: ReadonlyMap<string, string>;
}
