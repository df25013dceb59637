import { realpathSync, statSync } from 'node:fs';
import { basename, dirname, relative, resolve, sep } from 'node:path';
import { globSync, isDynamicPattern } from 'tinyglobby';
import { UserError } from '../errors.js';

/** A recipe file found in the workspace. */
export interface RecipeFile {
  abs: string;
  /** Workspace-relative, POSIX separators: what messages and the plan show. */
  rel: string;
  kind: 'perl' | 'twin';
}

export const DEFAULT_RECIPE_SOURCES = ['lib/Provisioner/Recipe', 'remote-files.yml'];

const TWIN = /\.(ya?ml|json)$/i;

/**
 * Expands the `recipes` input (files, folders, globs) into recipe files, sorted and de-duplicated.
 * A source the user named that matches nothing is an error; the built-in defaults may be absent.
 * Nothing inside the data folder (`dataDir`, workspace-relative) is ever a recipe: it holds what the
 * server sent, and a salvaged `.pm` would be compiled by perl on the runner (a BEGIN block runs as it
 * compiles), a salvaged `.yml` would name what to fetch and run. So a glob that covers it (`**\/*.pm`)
 * skips it, and a source inside it matches nothing.
 */
export function discoverRecipeFiles(
  sources: string[],
  workspace: string,
  isDefault: boolean,
  dataDir: string,
): RecipeFile[] {
  const found = new Map<string, RecipeFile>();
  const salvaged = insideFolder(resolve(workspace, dataDir));
  for (const source of sources) {
    const matches = expandSource(source, workspace, resolve(workspace, dataDir)).filter((abs) => !salvaged(abs));
    if (matches.length === 0 && !isDefault) {
      throw new UserError(
        `input \`recipes\`: "${source}" matches no recipe file (looked for *.pm, *.yml, *.yaml, *.json in ${resolve(workspace, source)}, outside the data folder ${dataDir}, which holds salvaged files and is never read for recipes)`,
      );
    }
    for (const abs of matches)
      found.set(abs, { abs, rel: toRel(workspace, abs), kind: abs.endsWith('.pm') ? 'perl' : 'twin' });
  }
  return [...found.values()].sort((a, b) => a.rel.localeCompare(b.rel));
}

function expandSource(source: string, workspace: string, dataAbs: string): string[] {
  // Not even walked: the data folder may hold 20,000 salvaged files (the filter above is the rule).
  const skipData = (cwd: string) => {
    const rel = relative(cwd, dataAbs).split(sep).join('/');
    return rel === '' || rel.startsWith('..') ? [] : [`${rel}/**`];
  };
  if (isDynamicPattern(source)) {
    return globSync(source, {
      cwd: workspace,
      absolute: true,
      onlyFiles: true,
      dot: false,
      ignore: skipData(workspace),
    })
      .filter((f) => f.endsWith('.pm') || TWIN.test(f))
      .map((f) => resolve(f));
  }
  const abs = resolve(workspace, source);
  const stat = statSync(abs, { throwIfNoEntry: false });
  if (!stat) return [];
  if (stat.isFile()) return [abs];
  return globSync(['**/*.pm', '**/*.yml', '**/*.yaml', '**/*.json'], {
    cwd: abs,
    absolute: true,
    onlyFiles: true,
    ignore: skipData(abs),
  }).map((f) => resolve(f));
}

/**
 * Whether a path lies in `folder`, by name and by where it really is (a link in the workspace that
 * points into the data folder leads there too).
 */
function insideFolder(folder: string): (abs: string) => boolean {
  const real = realOrSelf(folder);
  const within = (p: string, dir: string) => p === dir || p.startsWith(dir + sep);
  return (abs) => within(abs, folder) || within(realOrSelf(abs), real);
}

function realOrSelf(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return path;
  }
}

function toRel(workspace: string, abs: string): string {
  return relative(workspace, abs).split(sep).join('/');
}

/** A Perl recipe's name is its module's last name part: Ubuntu/Redis.pm answers to "Redis". */
export function perlRecipeName(file: RecipeFile): string {
  return basename(file.abs, '.pm');
}

/** How deep a file sits below the shallowest file of the same name: a distro subfolder is deeper. */
export function folderOf(file: RecipeFile): string {
  return dirname(file.rel);
}
