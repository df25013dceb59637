import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, renameSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { UserError } from '../errors.js';
import { tempRoot } from '../temp.js';
import { Git, GitError } from './git.js';

/**
 * Which salvage the commit store works from. A re-run of a workflow checks out the commit that
 * triggered it, not the branch's tip: after a backup pushed a salvage, that checkout is *behind* for the
 * domain's folder. A backup must build on the tip's salvage (or it salvages a rebuilt server over it),
 * and a restore must not put back the older one without being asked to.
 */

/** One commit's view of the domain folder: the commit, its date, and the folder's tree (null: no such folder). */
export interface FolderAt {
  commit: string;
  /** The committer date, ISO 8601. */
  date: string;
  tree: string | null;
}

/** The branch's tip on origin (fetched), or null when origin has no such branch. */
export async function fetchTip(git: Git, branch: string): Promise<string | null> {
  try {
    await git.run(['fetch', '-q', '--no-tags', 'origin', `+refs/heads/${branch}:refs/remotes/origin/${branch}`]);
  } catch (err) {
    if (!(err instanceof GitError)) throw err;
    // Asked after the fact, so a failure for any other reason keeps git's own message.
    const missing = await git.run(['ls-remote', '--exit-code', '--heads', 'origin', `refs/heads/${branch}`]).then(
      () => false,
      (e: unknown) => e instanceof GitError && e.code === 2,
    );
    if (missing) return null;
    throw err;
  }
  return git.revParse(`refs/remotes/origin/${branch}`);
}

export async function folderAt(git: Git, commit: string, path: string): Promise<FolderAt> {
  const date = (await git.run(['show', '-s', '--format=%cI', commit])).trim();
  return { commit, date, tree: await folderTree(git, commit, path) };
}

/** The tree `<path>` names in `commit`; null when there is none (or something else stands there). */
export async function folderTree(git: Git, commit: string, path: string): Promise<string | null> {
  // `<commit>:<path>^{tree}` would read `^{tree}` as part of the path: the type is asked apart.
  const id = await git.revParse(`${commit}:${path}`);
  if (id === null) return null;
  return (await git.run(['cat-file', '-t', id])).trim() === 'tree' ? id : null;
}

/**
 * True when `tip` holds a salvage of the folder that `head` does not, and is not already part of
 * `head`'s history: the checkout is behind for the folder. A checkout *ahead* of the tip (a commit an
 * earlier step made, not pushed yet) is not behind, nor is one whose branch holds no salvage.
 *
 * Ancestry decides first, in both directions: fetchTip brings the tip's history down to the commits
 * the checkout has, so even a depth-1 checkout can prove that the tip descends from it (a re-run's
 * triggering commit). Dates are never trusted for that: a clock running ahead, or the same second,
 * let a re-run of a rebuilt server pass as "not behind". What ancestry cannot prove — a shallow
 * checkout of a pull request's merge commit, whose parents were cut off — is `unprovable`'s call: a
 * backup builds on the tip it pushes onto ('behind'); a restore takes the newer commit by date.
 */
export async function isBehind(
  git: Git,
  head: FolderAt | null,
  tip: FolderAt,
  unprovable: 'behind' | 'by-date',
): Promise<boolean> {
  if (tip.tree === null) return false;
  if (head === null) return true;
  if (head.tree === tip.tree) return false;
  if (await isAncestor(git, head.commit, tip.commit)) return true;
  if (await isAncestor(git, tip.commit, head.commit)) return false;
  const shallow = (await git.run(['rev-parse', '--is-shallow-repository'])).trim() === 'true';
  // A full history that shows neither contains the other: the tip holds a salvage head never saw.
  if (!shallow || unprovable === 'behind') return true;
  return Date.parse(tip.date) > Date.parse(head.date);
}

/** Is `a` in `b`'s history (or `b` itself)? */
async function isAncestor(git: Git, a: string, b: string): Promise<boolean> {
  return git
    .run(['merge-base', '--is-ancestor', a, b])
    .then(() => true)
    .catch((err: unknown) => {
      if (err instanceof GitError && err.code === 1) return false;
      throw err;
    });
}

/**
 * Replaces the domain folder in the workspace with the folder as `at` has it, as a checkout would write
 * it (the data folder's own .gitattributes apply, the runner's autocrlf does not). Written beside the
 * folder and swapped in with renames, so a run cut off leaves the old folder or the new one, never a mix.
 */
export async function checkoutFolder(git: Git, path: string, domainDir: string, at: FolderAt): Promise<void> {
  const parent = dirname(domainDir);
  const stageName = `.remote-files-stage-${randomBytes(6).toString('hex')}`;
  const stage = join(parent, stageName);
  const trash = join(parent, `.remote-files-old-${randomBytes(6).toString('hex')}`);
  const tmp = mkdtempSync(join(tempRoot(), 'remote-files-checkout-'));
  try {
    if (at.tree !== null) {
      const env = { GIT_INDEX_FILE: join(tmp, 'index') };
      const stagePath = `${dirname(path) === '.' ? '' : `${dirname(path)}/`}${stageName}`;
      await git.run(['read-tree', `--prefix=${stagePath}/`, at.tree], { env });
      await git.run(['checkout-index', '-a', '-f'], { env });
    }
    if (existsSync(domainDir)) renameSync(domainDir, trash);
    if (at.tree !== null) renameSync(stage, domainDir);
  } catch (err) {
    if (err instanceof GitError)
      throw new UserError(`store: commit could not check out ${path} as of ${at.commit.slice(0, 7)}: ${err.detail}`);
    throw err;
  } finally {
    rmSync(stage, { recursive: true, force: true });
    rmSync(trash, { recursive: true, force: true });
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** `abc1234 (2026-12-07T10:00:00Z)`: how a salvage's commit is named in messages. */
export function commitLabel(at: Pick<FolderAt, 'commit' | 'date'>): string {
  return `${at.commit.slice(0, 7)} (${at.date})`;
}
