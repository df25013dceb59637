// Which workflow runs an artifact may be restored from (artifact poisoning, issue #13).
//
// Artifacts are listed per repository, and anything a run uploads is listed there: a pull request from
// a fork runs the fork's version of the workflow in this repository and may upload a file under any
// name. Restoring "the newest artifact of that name" would put a stranger's files on the server. So an
// artifact is taken only from a run of this repository, started from this repository (not a fork),
// of the same workflow, on the same branch (or the one `artifact-branch` names). Pure: no I/O here.

/** The fields of a workflow run (`GET /repos/{o}/{r}/actions/runs/{id}`) the rule reads. */
export interface RunFacts {
  id: number;
  workflowId: number | undefined;
  /** The workflow file, e.g. `.github/workflows/backup.yml`. */
  path: string;
  event: string;
  headBranch: string;
  repository: { id: number; fullName: string } | null;
  headRepository: { id: number; fullName: string } | null;
}

/** What an artifact listing says of the artifact's run (`workflow_run`); any field may be missing. */
export interface ListedRun {
  id?: number;
  repository_id?: number;
  head_repository_id?: number;
  head_branch?: string | null;
}

/** The runs an artifact may come from. */
export interface Wanted {
  /** `owner/name` of this repository (GITHUB_REPOSITORY). */
  repository: string;
  repositoryId: number | undefined;
  /** This run's workflow: compared by id when known, else by file path. */
  workflowId: number | undefined;
  workflowPath: string;
  branch: string;
}

/** Why an artifact was passed over: not this repository's own run, another workflow, another branch. */
export type Refusal = 'foreign' | 'workflow' | 'branch';

/**
 * Why a run's artifacts are not this repository's own, or null when they are. Used for every run,
 * including one named by `artifact-run-id`: the id may come from untrusted data (the classic case is
 * `${{ github.event.workflow_run.id }}` of a run a fork's pull request started).
 */
export function foreignOrigin(run: RunFacts, repository: string, repositoryId?: number): string | null {
  const same = (a: string, b: string) => a.toLowerCase() === b.toLowerCase();
  if (
    !run.repository ||
    !same(run.repository.fullName, repository) ||
    (repositoryId !== undefined && run.repository.id !== repositoryId)
  ) {
    return `belongs to ${run.repository?.fullName ?? 'an unknown repository'}, not ${repository}`;
  }
  // GitHub drops the head repository of a run whose fork was deleted: unknown is not ours.
  if (!run.headRepository)
    return `was started from a repository GitHub no longer names (a deleted fork?), event ${run.event || 'unknown'}`;
  if (run.headRepository.id !== run.repository.id || !same(run.headRepository.fullName, run.repository.fullName)) {
    return `was started from the fork ${run.headRepository.fullName} (event ${run.event || 'unknown'})`;
  }
  // Runs in this repository's context for any pull request, a fork's included, and commonly builds the
  // pull request's code: what it uploads is not a backup of ours, whatever its head fields say.
  if (run.event === 'pull_request_target')
    return 'was started by a pull_request_target event, which any fork can trigger';
  return null;
}

/** A first look at an artifact from the listing alone, without fetching its run; null = fetch and judge. */
export function screenListed(listed: ListedRun, wanted: Wanted): Refusal | null {
  if (
    wanted.repositoryId !== undefined &&
    listed.repository_id !== undefined &&
    listed.repository_id !== wanted.repositoryId
  )
    return 'foreign';
  if (
    listed.repository_id !== undefined &&
    listed.head_repository_id !== undefined &&
    listed.head_repository_id !== listed.repository_id
  )
    return 'foreign';
  if (typeof listed.head_branch === 'string' && listed.head_branch !== wanted.branch) return 'branch';
  return null;
}

/** The whole rule for one run: null when its artifacts may be restored. */
export function judgeRun(run: RunFacts, wanted: Wanted): Refusal | null {
  if (foreignOrigin(run, wanted.repository, wanted.repositoryId) !== null) return 'foreign';
  const sameWorkflow =
    wanted.workflowId !== undefined && run.workflowId !== undefined
      ? run.workflowId === wanted.workflowId
      : run.path !== '' && run.path === wanted.workflowPath;
  if (!sameWorkflow) return 'workflow';
  if (run.headBranch !== wanted.branch) return 'branch';
  return null;
}

/** The branch this run is for: the pull request's head branch, else the ref's short name. */
export function currentBranch(env: NodeJS.ProcessEnv): string {
  return env.GITHUB_HEAD_REF || env.GITHUB_REF_NAME || '';
}

/** The workflow file of GITHUB_WORKFLOW_REF (`owner/repo/.github/workflows/x.yml@refs/heads/main`), or ''. */
export function workflowPathOfRef(ref: string | undefined): string {
  const m = /^[^/]+\/[^/]+\/(.+?)@[^@]*$/.exec(ref ?? '');
  return m ? m[1]! : '';
}

export interface Skipped {
  foreign: number[];
  workflow: number[];
  branch: number[];
}

/** One line for the log: how many artifacts were passed over and why (with the runs of foreign ones). */
export function describeSkipped(name: string, skipped: Skipped, wanted: Wanted): string | null {
  const total = skipped.foreign.length + skipped.workflow.length + skipped.branch.length;
  if (total === 0) return null;
  const runs = (ids: number[]) => {
    const unique = [...new Set(ids)];
    return `run${unique.length > 1 ? 's' : ''} ${unique.slice(0, 5).join(', ')}${unique.length > 5 ? ', …' : ''}`;
  };
  const parts = [
    skipped.foreign.length > 0 &&
      `${skipped.foreign.length} from a fork's or a pull_request_target run (${runs(skipped.foreign)})`,
    skipped.workflow.length > 0 && `${skipped.workflow.length} from another workflow`,
    skipped.branch.length > 0 && `${skipped.branch.length} from another branch`,
  ].filter((p): p is string => typeof p === 'string');
  return `artifact ${name}: skipped ${total} not from ${describeWanted(wanted)}: ${parts.join(', ')}`;
}

/** "runs of .github/workflows/x.yml on branch main of owner/repo" */
export function describeWanted(wanted: Wanted): string {
  return `${wanted.repository}'s own runs of ${wanted.workflowPath || `workflow ${wanted.workflowId ?? '?'}`} on branch ${wanted.branch || '(none)'}`;
}
