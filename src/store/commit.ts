import { randomInt } from 'node:crypto';
import { existsSync, lstatSync, mkdtempSync, readdirSync, realpathSync, rmSync } from 'node:fs';
import { isAbsolute, join, relative, sep } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { UserError } from '../errors.js';
import { tempRoot } from '../temp.js';
import { manifestPath } from '../transfer/manifest/manifest.js';
import { isUnescapedGitName } from '../transfer/manifest/stored-names.js';
import { ATTRIBUTES_NAME } from './data-folder.js';
import {
  checkoutFolder,
  commitLabel,
  fetchTip,
  folderAt,
  folderTree,
  isBehind,
  type FolderAt,
} from './commit-baseline.js';
import { Git, GitError } from './git.js';
import type { LoadResult, SaveResult, Store, StoreContext } from './types.js';

export interface CommitOptions {
  /** '' = `remote-files: salvage of <domain> [skip ci]`. */
  message: string;
  /** '' = github-actions[bot]. */
  userName: string;
  /** '' = the github-actions bot's noreply address. */
  userEmail: string;
  /** '' = the checked-out branch; in a detached checkout the workflow's branch (GITHUB_HEAD_REF, else GITHUB_REF_NAME). */
  branch: string;
  push: boolean;
  /** >= 1. */
  pushAttempts: number;
  /** Restore: the commit (or branch, tag) whose salvage to restore, on purpose; '' = the checkout's, if it is the newest. */
  salvageRef?: string;
  /** Where the GITHUB_* variables are read from; process.env when absent. */
  env?: NodeJS.ProcessEnv;
}

const BOT_NAME = 'github-actions[bot]';
const BOT_EMAIL = '41898282+github-actions[bot]@users.noreply.github.com';

const MiB = 1024 * 1024;
// GitHub rejects a push holding a file larger than 100 MiB and warns above 50 MiB.
const REFUSE_BYTES = 100 * MiB;
const WARN_BYTES = 50 * MiB;

/**
 * The files in the domain folder GitHub would refuse (`refuse`) or warn about (`warn`), as
 * `<path relative to the workspace> (<size>)`, and the names git would interpret (`gitNames`: a live
 * `.git`, `.gitattributes`, …; this version stores them escaped, so one here was put there by someone
 * else, and staging it would let git act on it). Symlinks are not followed: git stores a link, not its target.
 */
export function checkCommitSizes(
  domainDir: string,
  workspace: string,
): { refuse: string[]; warn: string[]; gitNames: string[] } {
  const refuse: string[] = [];
  const warn: string[] = [];
  const gitNames: string[] = [];
  const visit = (dir: string): void => {
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    for (const name of names.sort()) {
      const path = join(dir, name);
      if (isUnescapedGitName(name) && !(dir === domainDir && name === ATTRIBUTES_NAME)) {
        gitNames.push(toPosix(relative(workspace, path)));
        continue;
      }
      const st = lstatSync(path);
      if (st.isDirectory()) visit(path);
      else if (st.isFile() && st.size > WARN_BYTES) {
        (st.size > REFUSE_BYTES ? refuse : warn).push(
          `${toPosix(relative(workspace, path))} (${(st.size / MiB).toFixed(1)} MiB)`,
        );
      }
    }
  };
  visit(domainDir);
  return { refuse, warn, gitNames };
}

/**
 * Persists the domain folder as a commit on a branch and pushes it. Only `<data-dir>/<domain>` is ever
 * staged or committed; a push that loses a race is re-applied on the new remote tip, replacing just that
 * folder, so parallel jobs salvaging different domains into one branch all land.
 */
export class CommitStore implements Store {
  readonly name = 'commit' as const;

  /**
   * The branch's tip on origin as a backup found it before connecting (see baseline): the salvage it
   * builds on. A push rejected because that folder changed on origin since then must not replace it.
   */
  private startTip: FolderAt | null | undefined;
  /** The checkout was behind startTip for the folder (baseline brought the tip's folder in). */
  private behind = false;

  constructor(private readonly opts: CommitOptions) {}

  /**
   * A backup's baseline is the domain folder as the branch's tip on origin has it, not as the checkout
   * does: a re-run checks out the triggering commit, from before the salvage the first run pushed.
   * When the checkout is behind for the folder, the tip's folder replaces it in the workspace.
   */
  async baseline(ctx: StoreContext): Promise<string[]> {
    if (!this.opts.push) return [];
    const repo = await openRepo(ctx.workspace);
    const path = repoPath(repo.top, ctx.workspace, ctx.domainDir);
    const branch = await this.resolveBranch(repo);
    const tipSha = await fetchTip(repo.git, branch).catch(asUserError(`could not fetch ${branch} from origin`));
    if (tipSha === null) {
      this.startTip = null;
      return [];
    }
    const tip = await folderAt(repo.git, tipSha, path);
    this.startTip = tip;
    const head = repo.head ? await folderAt(repo.git, repo.head, path) : null;
    if (!(await isBehind(repo.git, head, tip, 'behind'))) return [];
    this.behind = true;
    await checkoutFolder(repo.git, path, ctx.domainDir, tip);
    return [
      `The checkout${head ? ` (${commitLabel(head)})` : ''} is behind ${branch} on origin for ${path}: working from the salvage at the branch's tip, ${commitLabel(tip)}`,
    ];
  }

  async save(ctx: StoreContext, _changed: boolean): Promise<SaveResult> {
    const sizes = checkCommitSizes(ctx.domainDir, ctx.workspace);
    if (sizes.gitNames.length > 0) {
      throw new UserError(
        `store: commit refuses to stage names git would act on, which remote-files never writes: ${sizes.gitNames.slice(0, 10).join(', ')}${sizes.gitNames.length > 10 ? ', …' : ''}. ` +
          'They did not come from a backup of this version (salvaged names like these are stored escaped, see README "What the data folder looks like"); remove them from the data folder.',
      );
    }
    if (sizes.refuse.length > 0) {
      throw new UserError(
        `store: commit cannot push files over GitHub's 100 MiB limit:\n${sizes.refuse.map((f) => `  ${f}`).join('\n')}\n` +
          'Use `store: artifact` or `store: cache` for this domain, or leave these files out with the `exclude` input.',
      );
    }
    if (sizes.warn.length > 0) {
      ctx.warning(
        `GitHub warns about files over 50 MiB, and every version stays in the repository's history: ${sizes.warn.join(', ')}. Consider \`store: artifact\` or \`store: cache\`, or the \`exclude\` input.`,
      );
    }

    const repo = await openRepo(ctx.workspace);
    const path = repoPath(repo.top, ctx.workspace, ctx.domainDir);
    const branch = await this.resolveBranch(repo);
    const local = `refs/heads/${branch}`;
    const onBranch = repo.headRef === local;
    const git = repo.git;

    // Where the commit goes on top of, and which local ref then points at it. A checkout of the branch
    // builds on HEAD, so commits earlier steps made are pushed with ours. Anything else builds on the
    // branch itself: in a pull request's detached merge checkout, building on HEAD would push the merge.
    // A checkout of the branch behind its tip (see baseline) builds on the tip: its push would be refused.
    let base = onBranch && this.behind && this.startTip ? this.startTip.commit : repo.head;
    let localRef = 'HEAD';
    let localOld = repo.head;
    if (!onBranch) {
      const localTip = await git.revParse(local);
      const remoteTip = this.opts.push
        ? await fetchTip(git, branch).catch(asUserError(`could not fetch ${branch} from origin`))
        : null;
      if (remoteTip !== null) await this.refuseChangedMeanwhile(git, remoteTip, path, branch);
      base = remoteTip ?? localTip ?? repo.head;
      if (repo.headRef !== null) {
        localRef = local;
        localOld = localTip;
      }
    }
    // Moving HEAD keeps the user's files; only the index learns our folder, so `git status` stays clean for it.
    const moveLocal = async (sha: string) => {
      await git.run([
        'update-ref',
        ...(localRef === 'HEAD' && !onBranch ? ['--no-deref'] : []),
        '-m',
        'remote-files: salvage',
        localRef,
        sha,
        localOld ?? '',
      ]);
      if (localRef === 'HEAD') await stageFolder(git, path, ctx);
    };

    const tmp = mkdtempSync(join(tempRoot(), 'remote-files-commit-'));
    try {
      const index = join(tmp, 'index');
      const snapshot = existsSync(ctx.domainDir) ? await snapshotTree(git, path, index) : null;
      const tree = await treeWith(git, base, path, snapshot, index);
      // Compared with the base rather than trusting `changed`: the folder can differ from the branch without
      // this backup changing it (it came from another store, or from a run that never committed it).
      if (base !== null ? tree === (await git.run(['rev-parse', `${base}^{tree}`])).trim() : snapshot === null) {
        return {
          outputs: { 'commit-sha': '', pushed: 'false' },
          summary: `nothing to commit: ${path} is unchanged on ${branch}`,
        };
      }
      const commit = (c: string | null, t: string) => this.commitTree(git, ctx.domain, c, t);
      const sha = await commit(base, tree);

      if (!this.opts.push) {
        await moveLocal(sha);
        return {
          outputs: { 'commit-sha': sha, pushed: 'false' },
          summary: `committed ${sha.slice(0, 7)} to ${branch} (not pushed: \`push\` is false)`,
        };
      }

      const pushed = await pushConverging(
        git,
        ctx,
        branch,
        path,
        snapshot,
        index,
        sha,
        Math.max(1, this.opts.pushAttempts),
        commit,
        (tip) => this.refuseChangedMeanwhile(git, tip, path, branch),
      );
      try {
        await moveLocal(pushed.sha);
      } catch (err) {
        if (!(err instanceof GitError)) throw err;
        // The data is on the remote already; a checkout that moved under us is not worth failing the run.
        ctx.warning(
          `pushed to ${branch}, but could not move the local ${localRef} to ${pushed.sha.slice(0, 7)}: ${err.detail}`,
        );
      }
      if (pushed.alreadyThere) {
        return {
          outputs: { 'commit-sha': '', pushed: 'false' },
          summary: `nothing to push: ${branch} on origin already holds this snapshot of ${path}`,
        };
      }
      const tries = pushed.attempt > 1 ? ` (attempt ${pushed.attempt})` : '';
      return {
        outputs: { 'commit-sha': pushed.sha, pushed: 'true' },
        summary: `committed ${pushed.sha.slice(0, 7)} and pushed to ${branch}${tries}`,
      };
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  }

  /** Another run pushed this domain's folder since the baseline: building on it would replace a salvage it never saw. */
  private async refuseChangedMeanwhile(git: Git, tip: string, path: string, branch: string): Promise<void> {
    if (this.startTip === undefined) return;
    const now = await folderTree(git, tip, path);
    if (now === (this.startTip?.tree ?? null)) return;
    throw new UserError(
      `store: commit stopped: ${path} changed on ${branch} while this backup ran (now at ${tip.slice(0, 7)}, it was at ${this.startTip ? this.startTip.commit.slice(0, 7) : 'no commit'}); another run salvaged this domain. Nothing was pushed and that salvage is untouched; run the backup again to build on it`,
    );
  }

  /** A work tree holding the data folder, a branch to commit to and, with `push`, a remote (identity: the bot's by default). */
  async check(ctx: StoreContext, saving: boolean): Promise<void> {
    if (!saving) return;
    const repo = await openRepo(ctx.workspace);
    repoPath(repo.top, ctx.workspace, ctx.domainDir);
    await this.resolveBranch(repo);
    if (this.opts.push && !(await repo.git.run(['remote'])).split('\n').includes('origin')) {
      throw new UserError(
        `store: commit has no remote to push to: the repository at ${repo.top} has no \`origin\`. Check out with actions/checkout, set \`push: false\`, or use another \`store\``,
      );
    }
  }

  /**
   * Restore and verify use the committed copy in the checkout, once it is known to be the newest: a
   * checkout behind the branch's tip for the folder (a re-run, an old ref) fails, naming both commits,
   * unless `salvage-ref` names the salvage to use on purpose.
   */
  async load(ctx: StoreContext): Promise<LoadResult> {
    const folder = toPosix(relative(ctx.workspace, ctx.domainDir));
    const at = this.opts.salvageRef ? await this.checkoutSalvageRef(ctx, this.opts.salvageRef) : await this.newest(ctx);
    const found = existsSync(manifestPath(ctx.domainDir));
    if (!found) return { found, outputs: {}, summary: `no committed copy in ${folder}` };
    const outputs: Record<string, string> = at ? { 'salvage-commit': at.commit, 'salvage-date': at.date } : {};
    const from = at ? ` from commit ${commitLabel(at)}` : '';
    const why = this.opts.salvageRef ? `, as \`salvage-ref: ${this.opts.salvageRef}\` asks` : '';
    return { found, outputs, summary: `using the committed copy in ${folder}${from}${why}` };
  }

  /** The checkout's commit, once the branch's tip on origin is known not to hold a newer salvage. */
  private async newest(ctx: StoreContext): Promise<FolderAt | null> {
    const repo = await openRepo(ctx.workspace).catch(() => null);
    if (!repo?.head) return null;
    const path = repoPath(repo.top, ctx.workspace, ctx.domainDir);
    const head = await folderAt(repo.git, repo.head, path);
    if (!(await repo.git.run(['remote'])).split('\n').includes('origin')) return head;
    const branch = await this.resolveBranch(repo).catch((err: unknown) => {
      if (!(err instanceof UserError)) throw err;
      ctx.warning(
        `cannot tell whether the checkout holds the newest salvage of ${path}: ${err.message}. Restoring the checkout's, commit ${commitLabel(head)}`,
      );
      return null;
    });
    if (branch === null) return head;
    const tipSha = await fetchTip(repo.git, branch).catch(
      asUserError(
        `could not fetch ${branch} from origin to make sure the checkout holds the newest salvage (set \`salvage-ref: ${head.commit.slice(0, 7)}\` to restore the checkout's)`,
      ),
    );
    if (tipSha === null) return head;
    const tip = await folderAt(repo.git, tipSha, path);
    if (await isBehind(repo.git, head, tip, 'by-date')) {
      // An earlier step of this job (a backup, skipped or not) may have brought the tip's salvage in already.
      if ((await this.workspaceTree(repo.git, path)) === tip.tree) return tip;
      throw new UserError(
        `store: commit: the checkout (${commitLabel(head)}) is behind ${branch} on origin (${commitLabel(tip)}) for ${path}: the tip holds a newer salvage, and a restore from here would put back the older one. ` +
          `Check out the branch's tip (actions/checkout with \`ref: \${{ github.ref }}\`), or set \`salvage-ref: ${head.commit.slice(0, 7)}\` to restore the older salvage on purpose`,
      );
    }
    return head;
  }

  /** The tree of the folder as the workspace holds it (not as HEAD does). */
  private async workspaceTree(git: Git, path: string): Promise<string | null> {
    if (!existsSync(join(git.cwd, path))) return null;
    const tmp = mkdtempSync(join(tempRoot(), 'remote-files-commit-'));
    try {
      return await snapshotTree(git, path, join(tmp, 'index'));
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  }

  /** `salvage-ref`'s folder in the workspace, fetched from origin when the checkout does not have it. */
  private async checkoutSalvageRef(ctx: StoreContext, ref: string): Promise<FolderAt> {
    const repo = await openRepo(ctx.workspace);
    const path = repoPath(repo.top, ctx.workspace, ctx.domainDir);
    // A branch or tag is origin's (a re-run's checkout has moved the local branch to an older commit);
    // a commit id is looked up here first, then fetched if the shallow checkout lacks it.
    const isCommitId = /^[0-9a-f]{7,40}$/.test(ref);
    let sha = isCommitId ? await repo.git.revParse(`${ref}^{commit}`) : null;
    if (sha === null && (await repo.git.run(['remote'])).split('\n').includes('origin')) {
      const fetched = await repo.git.run(['fetch', '-q', '--no-tags', 'origin', ref]).then(
        () => true,
        () => false,
      );
      if (fetched) sha = await repo.git.revParse('FETCH_HEAD^{commit}');
    }
    sha ??= await repo.git.revParse(`${ref}^{commit}`);
    if (sha === null) {
      throw new UserError(
        `input \`salvage-ref\`: "${ref}" names no commit here or on origin; give a commit id (the \`commit-sha\` output of the backup), a branch or a tag`,
      );
    }
    const at = await folderAt(repo.git, sha, path);
    if (at.tree === null)
      throw new UserError(
        `input \`salvage-ref\`: commit ${commitLabel(at)} holds no ${path}: nothing to restore from it`,
      );
    await checkoutFolder(repo.git, path, ctx.domainDir, at);
    return at;
  }

  private async resolveBranch(repo: Repo): Promise<string> {
    const env = this.opts.env ?? process.env;
    let branch = this.opts.branch.replace(/^refs\/heads\//, '');
    if (!branch && repo.headRef?.startsWith('refs/heads/')) branch = repo.headRef.slice('refs/heads/'.length);
    if (!branch)
      branch =
        env.GITHUB_HEAD_REF ||
        (env.GITHUB_REF?.startsWith('refs/heads/')
          ? env.GITHUB_REF_NAME || env.GITHUB_REF.slice('refs/heads/'.length)
          : '');
    if (!branch) {
      throw new UserError(
        `store: commit: the checkout is detached and the workflow's ref${env.GITHUB_REF ? ` (${env.GITHUB_REF})` : ''} is not a branch: set \`commit-branch\` to the branch to commit to`,
      );
    }
    try {
      await repo.git.run(['check-ref-format', `refs/heads/${branch}`]);
    } catch (err) {
      if (err instanceof GitError)
        throw new UserError(`store: commit: "${branch}" is not a valid branch name (\`commit-branch\`)`);
      throw err;
    }
    return branch;
  }

  private async commitTree(git: Git, domain: string, parent: string | null, tree: string): Promise<string> {
    const message = this.opts.message || `remote-files: salvage of ${domain} [skip ci]`;
    const out = await git.run(['commit-tree', tree, ...(parent ? ['-p', parent] : []), '-m', message], {
      config: [`user.name=${this.opts.userName || BOT_NAME}`, `user.email=${this.opts.userEmail || BOT_EMAIL}`],
    });
    return out.trim();
  }
}

/**
 * Pushes `sha`; when that fails (usually someone pushed first), fetches the branch and re-applies the
 * snapshot on its tip, replacing only `<path>`, until a push lands or the attempts run out.
 */
async function pushConverging(
  git: Git,
  ctx: StoreContext,
  branch: string,
  path: string,
  snapshot: string | null,
  index: string,
  first: string,
  attempts: number,
  commit: (parent: string | null, tree: string) => Promise<string>,
  refuseChanged: (tip: string) => Promise<void>,
): Promise<{ sha: string; attempt: number; alreadyThere: boolean }> {
  let sha = first;
  for (let attempt = 1; ; attempt++) {
    try {
      await git.run(['push', '-q', 'origin', `${sha}:refs/heads/${branch}`]);
      return { sha, attempt, alreadyThere: false };
    } catch (err) {
      if (!(err instanceof GitError)) throw err;
      // A remote that does not exist or refuses us says so again on every try: no retry.
      if (attempt >= attempts || cannotSucceed(err.detail)) {
        const tries =
          attempt < attempts
            ? ' (not retried: the remote is missing or refuses us)'
            : ` after ${attempts} attempt${attempts === 1 ? '' : 's'}`;
        throw new UserError(`store: commit could not push ${path} to ${branch}${tries}: ${err.detail}`);
      }
      ctx.info(
        `Push to ${branch} failed (attempt ${attempt} of ${attempts}), re-applying ${path} on the branch's tip: ${err.detail}`,
      );
    }
    await sleep(backoffMs(attempt));
    let tip: string | null;
    try {
      tip = await fetchTip(git, branch);
    } catch (err) {
      if (!(err instanceof GitError)) throw err;
      continue; // the next push reports whatever is wrong with the remote
    }
    if (tip === null) continue; // the branch is gone: pushing the same commit recreates it
    const tree = await treeWith(git, tip, path, snapshot, index);
    if (tree === (await git.run(['rev-parse', `${tip}^{tree}`])).trim()) {
      // Another writer already pushed exactly this snapshot of the folder.
      return { sha: tip, attempt, alreadyThere: true };
    }
    // Another run salvaged this domain meanwhile: re-applying ours would replace a salvage it never saw.
    await refuseChanged(tip);
    sha = await commit(tip, tree);
  }
}

/** git's messages for a push that fails the same way however often it is tried. */
export function cannotSucceed(detail: string): boolean {
  return /does not appear to be a git repository|repository .*not found|Authentication failed|could not read (Username|Password)|Permission to \S+ denied|returned error: 40[134]|protected branch|GH006|GH013|pre-receive hook declined|No such remote/i.test(
    detail,
  );
}

/** Full jitter that grows with the attempt: racing writers spread out instead of colliding again. */
function backoffMs(attempt: number): number {
  return randomInt(200, 1000) * Math.min(2 ** (attempt - 1), 4);
}

/**
 * The tree of `<path>` as it is on disk, through a private index so the user's staged changes are never
 * mixed in. Forced: salvaged files the repository ignores (`.env`, `*.log`) are part of the salvage.
 */
async function snapshotTree(git: Git, path: string, index: string): Promise<string | null> {
  rmSync(index, { force: true });
  const env = { GIT_INDEX_FILE: index };
  await git.run(['add', '-A', '-f', '--', path], { env });
  const tree = (await git.run(['write-tree'], { env })).trim();
  return git.revParse(`${tree}:${path}`);
}

/** `base`'s tree with `<path>` replaced by `snapshot` (removed when null); everything else as it is in `base`. */
async function treeWith(
  git: Git,
  base: string | null,
  path: string,
  snapshot: string | null,
  index: string,
): Promise<string> {
  rmSync(index, { force: true });
  const env = { GIT_INDEX_FILE: index };
  if (base !== null) {
    await git.run(['read-tree', base], { env });
    await git.run(['rm', '-r', '-q', '-f', '--cached', '--ignore-unmatch', '--', path], { env });
  }
  if (snapshot !== null) await git.run(['read-tree', `--prefix=${path}/`, snapshot], { env });
  return (await git.run(['write-tree'], { env })).trim();
}

async function stageFolder(git: Git, path: string, ctx: StoreContext): Promise<void> {
  try {
    await git.run(['add', '-A', '-f', '--', path]);
  } catch (err) {
    if (!(err instanceof GitError)) throw err;
    ctx.warning(`committed ${path}, but could not stage it in the checkout's index: ${err.detail}`);
  }
}

interface Repo {
  top: string;
  git: Git;
  /** `refs/heads/<name>`, or null when HEAD is detached. */
  headRef: string | null;
  /** Null on an unborn branch. */
  head: string | null;
}

async function openRepo(workspace: string): Promise<Repo> {
  let top: string;
  try {
    top = (await new Git(workspace).run(['rev-parse', '--show-toplevel'])).trim();
  } catch (err) {
    if (err instanceof GitError)
      throw new UserError(`store: commit needs a git checkout in the workspace (actions/checkout): ${err.detail}`);
    throw err;
  }
  const git = new Git(top);
  const url = await git.run(['remote', 'get-url', 'origin']).catch(() => '');
  if (url.trim()) git.hide(url.trim());
  const headRef = await git.orNull(['symbolic-ref', '-q', 'HEAD']);
  return { top, git, headRef, head: await git.revParse('HEAD^{commit}') };
}

/** `<data-dir>/<domain>` relative to the repository's top, with `/`: the form git's trees and pathspecs take. */
function repoPath(top: string, workspace: string, domainDir: string): string {
  // Through the real workspace path: the folder itself may not exist yet, and tmp dirs are often symlinked.
  const rel = relative(realpathSync(top), join(realpathSync(workspace), relative(workspace, domainDir)));
  if (rel === '' || rel.startsWith('..') || isAbsolute(rel)) {
    throw new UserError(`store: commit: the data folder ${domainDir} is not inside the repository at ${top}`);
  }
  return toPosix(rel);
}

function toPosix(p: string): string {
  return sep === '/' ? p : p.split(sep).join('/');
}

function asUserError(what: string): (err: unknown) => never {
  return (err) => {
    if (err instanceof GitError) throw new UserError(`store: commit ${what}: ${err.detail}`);
    throw err;
  };
}
