import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  currentBranch,
  describeSkipped,
  foreignOrigin,
  judgeRun,
  screenListed,
  workflowPathOfRef,
  type RunFacts,
  type Wanted,
} from '../../src/store/artifact-origin.js';

const REPO = { id: 10, fullName: 'octo/app' };
const FORK = { id: 66, fullName: 'mallory/app' };
const wanted: Wanted = {
  repository: 'octo/app',
  repositoryId: 10,
  workflowId: 7,
  workflowPath: '.github/workflows/backup.yml',
  branch: 'main',
};

function run(over: Partial<RunFacts> = {}): RunFacts {
  return {
    id: 1,
    workflowId: 7,
    path: '.github/workflows/backup.yml',
    event: 'push',
    headBranch: 'main',
    repository: REPO,
    headRepository: REPO,
    ...over,
  };
}

test("this repository's own run of the workflow on the branch is eligible, whatever its event", () => {
  for (const event of ['push', 'schedule', 'workflow_dispatch', 'pull_request', 'workflow_run'])
    assert.equal(judgeRun(run({ event }), wanted), null, event);
  // GitHub spells names as they were created; the comparison ignores case.
  assert.equal(
    judgeRun(
      run({ repository: { id: 10, fullName: 'Octo/App' }, headRepository: { id: 10, fullName: 'Octo/App' } }),
      wanted,
    ),
    null,
  );
});

test("a fork's run is foreign, even on a branch called main in the same workflow", () => {
  assert.equal(judgeRun(run({ event: 'pull_request', headRepository: FORK }), wanted), 'foreign');
  assert.match(
    foreignOrigin(run({ event: 'pull_request', headRepository: FORK }), 'octo/app') ?? '',
    /started from the fork mallory\/app \(event pull_request\)/,
  );
  // Same id but another name, or the other way round: either mismatch is enough.
  assert.equal(judgeRun(run({ headRepository: { id: 10, fullName: 'mallory/app' } }), wanted), 'foreign');
  assert.equal(judgeRun(run({ headRepository: { id: 66, fullName: 'octo/app' } }), wanted), 'foreign');
});

test('a deleted fork (no head repository), another repository and pull_request_target are foreign', () => {
  assert.match(foreignOrigin(run({ headRepository: null }), 'octo/app') ?? '', /deleted fork/);
  assert.match(
    foreignOrigin(
      run({ repository: { id: 11, fullName: 'octo/other' }, headRepository: { id: 11, fullName: 'octo/other' } }),
      'octo/app',
    ) ?? '',
    /belongs to octo\/other/,
  );
  assert.match(
    foreignOrigin(
      run({ repository: { id: 11, fullName: 'octo/app' }, headRepository: { id: 11, fullName: 'octo/app' } }),
      'octo/app',
      10,
    ) ?? '',
    /belongs to/,
  );
  assert.match(foreignOrigin(run({ repository: null }), 'octo/app') ?? '', /unknown repository/);
  assert.match(foreignOrigin(run({ event: 'pull_request_target' }), 'octo/app') ?? '', /pull_request_target/);
  assert.equal(judgeRun(run({ event: 'pull_request_target' }), wanted), 'foreign');
});

test('another workflow or branch is refused; the workflow is compared by id, by path only without ids', () => {
  assert.equal(judgeRun(run({ workflowId: 8, path: '.github/workflows/other.yml' }), wanted), 'workflow');
  // A renamed-then-recreated file gets a new id: the id decides, not the path.
  assert.equal(judgeRun(run({ workflowId: 8 }), wanted), 'workflow');
  assert.equal(judgeRun(run({ workflowId: undefined }), wanted), null);
  assert.equal(judgeRun(run({ workflowId: undefined, path: '.github/workflows/other.yml' }), wanted), 'workflow');
  assert.equal(
    judgeRun(run({ workflowId: undefined, path: '' }), { ...wanted, workflowId: undefined, workflowPath: '' }),
    'workflow',
  );
  assert.equal(judgeRun(run({ headBranch: 'feature' }), wanted), 'branch');
  assert.equal(judgeRun(run({ headBranch: 'feature' }), { ...wanted, branch: 'feature' }), null);
  // A fork is reported as such even when its workflow and branch differ too.
  assert.equal(judgeRun(run({ headRepository: FORK, workflowId: 8, headBranch: 'x' }), wanted), 'foreign');
});

test('the listing alone refuses what it can, and leaves the rest to the run', () => {
  assert.equal(
    screenListed({ id: 1, repository_id: 10, head_repository_id: 66, head_branch: 'main' }, wanted),
    'foreign',
  );
  assert.equal(
    screenListed({ id: 1, repository_id: 11, head_repository_id: 11, head_branch: 'main' }, wanted),
    'foreign',
  );
  assert.equal(
    screenListed({ id: 1, repository_id: 10, head_repository_id: 10, head_branch: 'dev' }, wanted),
    'branch',
  );
  assert.equal(screenListed({ id: 1, repository_id: 10, head_repository_id: 10, head_branch: 'main' }, wanted), null);
  // Missing fields prove nothing either way: the run is fetched.
  assert.equal(screenListed({ id: 1 }, wanted), null);
  assert.equal(screenListed({ id: 1, head_branch: null }, wanted), null);
});

test("the branch is the pull request's head branch, else the ref's name; the workflow file comes from GITHUB_WORKFLOW_REF", () => {
  assert.equal(currentBranch({ GITHUB_HEAD_REF: 'feature', GITHUB_REF_NAME: '12/merge' }), 'feature');
  assert.equal(currentBranch({ GITHUB_HEAD_REF: '', GITHUB_REF_NAME: 'main' }), 'main');
  assert.equal(currentBranch({}), '');
  assert.equal(
    workflowPathOfRef('octo/app/.github/workflows/backup.yml@refs/heads/main'),
    '.github/workflows/backup.yml',
  );
  assert.equal(workflowPathOfRef('octo/app/.github/workflows/b.yml@refs/pull/12/merge'), '.github/workflows/b.yml');
  assert.equal(workflowPathOfRef(undefined), '');
  assert.equal(workflowPathOfRef('nonsense'), '');
});

test('skipped artifacts are one line with counts, and the foreign runs named', () => {
  assert.equal(describeSkipped('n', { foreign: [], workflow: [], branch: [] }, wanted), null);
  assert.equal(
    describeSkipped('n', { foreign: [5, 4, 4], workflow: [3], branch: [2, 1] }, wanted),
    "artifact n: skipped 6 not from octo/app's own runs of .github/workflows/backup.yml on branch main: 3 from a fork's or a pull_request_target run (runs 5, 4), 1 from another workflow, 2 from another branch",
  );
  assert.match(
    describeSkipped('n', { foreign: [1, 2, 3, 4, 5, 6], workflow: [], branch: [] }, wanted) ?? '',
    /\(runs 1, 2, 3, 4, 5, …\)$/,
  );
});
