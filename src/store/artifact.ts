import * as toolkit from '@actions/artifact';
import { DefaultArtifactClient } from '@actions/artifact';
import { HttpClient, type HttpClientResponse } from '@actions/http-client';
import { createHash } from 'node:crypto';
import { createWriteStream, lstatSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { UserError } from '../errors.js';
import { tempRoot } from '../temp.js';
import {
  currentBranch,
  describeSkipped,
  describeWanted,
  foreignOrigin,
  judgeRun,
  workflowPathOfRef,
  type RunFacts,
  type Skipped,
  type Wanted,
} from './artifact-origin.js';
import { describeStats, packSnapshot, restoreSnapshot, withProcessEnv } from './snapshot.js';
import type { LoadResult, SaveResult, Store, StoreContext } from './types.js';

export interface ArtifactStoreOptions {
  /** Artifact name; '' = `remote-files-<domain>` with the characters artifact names cannot hold replaced. */
  name: string;
  /** Days to keep the artifact (1–90); undefined = the repository's setting. */
  retentionDays?: number;
  /** Token for the REST API, to find artifacts of other runs (needs `actions: read`). */
  githubToken: string;
  /** Input `artifact-run-id`: load from this workflow run instead of the newest earlier one. */
  runId?: number;
  /** Input `artifact-branch`: earlier runs of this branch are searched; '' or undefined = this run's branch. */
  branch?: string;
  /**
   * Variables laid over process.env while the store works (the toolkit reads its configuration from
   * process.env: ACTIONS_RUNTIME_TOKEN, ACTIONS_RESULTS_URL, GITHUB_REPOSITORY, …). Default: none.
   */
  env?: NodeJS.ProcessEnv;
}

/** The characters @actions/artifact refuses in a name (and `/` `\`, which also keep it one file name). */
const BAD_NAME_CHAR = /[":<>|*?\\/\r\n\0]/;

export function defaultArtifactName(domain: string): string {
  return `remote-files-${domain}`.replace(new RegExp(BAD_NAME_CHAR.source, 'g'), '-');
}

interface Found {
  id: number;
  runId: number | undefined;
  digest: string | undefined;
}

/** One artifact in a REST listing (the fields we use). */
interface RestArtifact {
  id: number;
  name: string;
  expired: boolean;
  digest?: string | null;
  workflow_run?: {
    id?: number;
    repository_id?: number;
    head_repository_id?: number;
    head_branch?: string | null;
  } | null;
}

/** One workflow run in the REST API (the fields we use). */
interface RestRun {
  id?: number;
  workflow_id?: number;
  path?: string;
  event?: string;
  head_branch?: string | null;
  repository?: { id?: number; full_name?: string } | null;
  head_repository?: { id?: number; full_name?: string } | null;
}

/**
 * Keeps the domain folder as a workflow artifact: ONE snapshot tar uploaded as is (no zip around it),
 * so modes, mtimes and symlinks survive, and a download is unpacked only by the strict unpacker.
 * Each run uploads its own copy; a restore takes this run's, else the one of `artifact-run-id`, else
 * the newest of an earlier run of this repository's own (never a fork's), same workflow, same branch
 * (see artifact-origin.ts).
 */
export class ArtifactStore implements Store {
  readonly name = 'artifact' as const;

  constructor(private readonly opts: ArtifactStoreOptions) {}

  artifactName(domain: string): string {
    const name = this.opts.name === '' ? defaultArtifactName(domain) : this.opts.name;
    // The name is also the snapshot's file name (an unarchived artifact is named after its file).
    if (name === '.' || name === '..' || BAD_NAME_CHAR.test(name)) {
      throw new UserError(`input \`artifact-name\`: "${name}" cannot be an artifact name`);
    }
    return name;
  }

  async check(ctx: StoreContext, _saving: boolean): Promise<void> {
    await this.inEnv(async () => {
      requireRuntime();
      this.artifactName(ctx.domain);
    });
  }

  async save(ctx: StoreContext, _changed: boolean): Promise<SaveResult> {
    // Saved even when nothing changed: each run's artifact expires on its own schedule, and the newest
    // must not be one that is about to.
    return this.inEnv(async () => {
      requireRuntime();
      const name = this.artifactName(ctx.domain);
      const work = mkdtempSync(join(tempRoot(), 'remote-files-artifact-'));
      try {
        const file = join(work, name);
        const stats = await packSnapshot(ctx.domainDir, file, (rel, why) =>
          ctx.warning(`not stored in the artifact: ${JSON.stringify(rel)} (${why})`),
        );
        const client = new DefaultArtifactClient();
        // One name per run: a re-run of this job (or a second backup in it) would be refused with 409.
        // The older copy of this run goes; earlier runs keep theirs.
        const older = await thisRunArtifact(client, name);
        if (older) {
          await client.deleteArtifact(name);
          ctx.info(`Replacing artifact ${name} (id ${older.id}) uploaded earlier in this run`);
        }
        const up = await client.uploadArtifact(name, [file], work, {
          skipArchive: true,
          ...(this.opts.retentionDays !== undefined && { retentionDays: this.opts.retentionDays }),
        });
        if (up.id === undefined) throw new Error(`artifact ${name}: the upload finished without an artifact id`);
        return {
          outputs: { 'artifact-id': String(up.id) },
          summary: `uploaded artifact ${name} (id ${up.id}: ${describeStats(stats)})`,
        };
      } finally {
        rmSync(work, { recursive: true, force: true });
      }
    });
  }

  async load(ctx: StoreContext): Promise<LoadResult> {
    return this.inEnv(async (): Promise<LoadResult> => {
      requireRuntime();
      const name = this.artifactName(ctx.domain);
      const client = new DefaultArtifactClient();
      let found: Found | null = await thisRunArtifact(client, name);
      let where = 'this run';
      if (!found) {
        // local-action's stand-in lists the artifacts of its own process as this run's, and there are no
        // other runs to search: its artifact list lives in memory (version 7), not in LOCAL_ACTION_ARTIFACT_PATH.
        const lookup = standIn()
          ? {
              found: null,
              why: 'in this @github/local-action run (it keeps the artifacts of the run that uploaded them only; restore from `store: cache` locally)',
            }
          : this.opts.runId !== undefined
            ? await this.findInRun(repository(), this.opts.runId, name)
            : await this.findNewest(repository(), name, ctx);
        if (!lookup.found) {
          // Said in the log too: a restore fails right after with "no stored copy", which cannot say why.
          const summary = `no artifact ${name} found ${lookup.why}`;
          ctx.info(summary);
          return { found: false, outputs: {}, summary };
        }
        found = lookup.found;
        where = `run ${found.runId}`;
      }
      const work = mkdtempSync(join(tempRoot(), 'remote-files-artifact-'));
      try {
        let file: string;
        if (found.runId === undefined) {
          const got = await client.downloadArtifact(found.id, {
            path: work,
            skipDecompress: true,
            ...(found.digest ? { expectedHash: found.digest } : {}),
          });
          if (got.digestMismatch)
            throw new Error(`artifact ${name} (id ${found.id}): the download does not match the artifact's digest`);
          file = downloadedFile(work, name);
        } else {
          file = await this.downloadFromRun(repository(), found, name, work);
        }
        const stats = await restoreSnapshot(file, ctx.domainDir);
        return {
          found: true,
          outputs: { 'artifact-id': String(found.id) },
          summary: `restored artifact ${name} (id ${found.id}, ${where}: ${describeStats(stats)})`,
        };
      } finally {
        rmSync(work, { recursive: true, force: true });
      }
    });
  }

  private inEnv<T>(fn: () => Promise<T>): Promise<T> {
    return withProcessEnv(this.opts.env ?? {}, undefined, fn);
  }

  /**
   * The artifact of that name in one given run (input `artifact-run-id`). Named explicitly, it may be of
   * another workflow or branch; but a run a fork started is refused like in the search: the id may come
   * from untrusted data (`github.event.workflow_run.id` of a fork's pull request run is the classic case).
   */
  private async findInRun(repo: Repo, runId: number, name: string): Promise<{ found: Found | null; why: string }> {
    const run = await this.runFacts(repo, runId, true);
    if (!run)
      return {
        found: null,
        why: `in run ${runId}: ${repo.owner}/${repo.repo} has no such run, or the token cannot see it (input \`artifact-run-id\`)`,
      };
    const foreign = foreignOrigin(run, `${repo.owner}/${repo.repo}`);
    if (foreign !== null) {
      throw new UserError(
        `input \`artifact-run-id\`: run ${runId} ${foreign}; its artifacts are not restored, since such a run can upload any file under any name. Name a run of this repository's own`,
      );
    }
    const list = await this.rest(repo, `actions/runs/${runId}/artifacts`, { name, per_page: '100' });
    const r = pick(list.artifacts, name, runId);
    return { found: r.found, why: `in run ${runId}${r.expired ? ` (${r.expired} expired)` : ''}` };
  }

  /**
   * The newest artifact of that name from an eligible run (artifact-origin.ts): this repository's own,
   * same workflow, same branch. Searched run by run, not in the repository's artifact listing: anyone
   * who can run a workflow here (a fork's pull request) can fill that listing with artifacts of our
   * name, and ~1,000 of them pushed the genuine one past any number of pages read. The runs of this
   * workflow on this branch (GitHub filters them) are read newest first and judged from the listing
   * alone (a fork's is skipped without a request); only an eligible run's artifacts are asked for.
   */
  private async findNewest(repo: Repo, name: string, ctx: StoreContext): Promise<{ found: Found | null; why: string }> {
    const wanted = await this.wanted(repo);
    if (wanted.workflowId === undefined)
      throw new Error(`run ${process.env.GITHUB_RUN_ID}: GitHub did not say which workflow it belongs to`);
    const skipped: Skipped = { foreign: [], workflow: [], branch: [] };
    let expired = 0;
    let asked = 0;
    let found: Found | null = null;
    search: for (let page = 1; page <= MAX_RUN_PAGES; page++) {
      const runs = await this.workflowRuns(repo, wanted.workflowId, wanted.branch, page);
      for (const run of [...runs].sort((a, b) => b.id - a.id)) {
        const refusal = judgeRun(run, wanted);
        if (refusal !== null) {
          skipped[refusal].push(run.id);
          continue;
        }
        if (++asked > MAX_RUNS_ASKED) break search;
        const list = await this.rest(repo, `actions/runs/${run.id}/artifacts`, { name, per_page: '100' });
        const r = pick(list.artifacts, name, run.id);
        expired += r.expired;
        if (r.found) {
          found = r.found;
          break search;
        }
      }
      if (runs.length < 100) break;
    }
    const line = describeSkipped(name, skipped, wanted);
    // A fork's run under our workflow and branch is worth a look (an attempt to poison the restore?); the rest is routine.
    if (line !== null && skipped.foreign.length > 0) ctx.warning(line);
    else if (line !== null) ctx.info(line);
    if (found) return { found, why: '' };
    const notes = [
      expired > 0 && `${expired} expired`,
      line !== null && `${skipped.foreign.length + skipped.workflow.length + skipped.branch.length} skipped`,
      asked > MAX_RUNS_ASKED && `only the newest ${MAX_RUNS_ASKED} runs looked at`,
    ].filter((x): x is string => typeof x === 'string');
    return {
      found: null,
      why:
        `in this run or an earlier one of ${describeWanted(wanted)}${notes.length > 0 ? ` (${notes.join(', ')})` : ''}; ` +
        'to restore from another branch set input `artifact-branch`, or name a run of this repository with `artifact-run-id`',
    };
  }

  /** One page of this workflow's runs on `branch` (`GET …/actions/workflows/{id}/runs`), as the rule reads them. */
  private async workflowRuns(repo: Repo, workflowId: number, branch: string, page: number): Promise<RunFacts[]> {
    const res = await this.api(repo, `actions/workflows/${workflowId}/runs`, {
      branch,
      per_page: '100',
      page: String(page),
    });
    const status = res.message.statusCode ?? 0;
    const text = await res.readBody();
    let body: { workflow_runs?: RestRun[] } = {};
    try {
      body = JSON.parse(text) as typeof body;
    } catch {
      // An error page is not JSON; the status says enough.
    }
    if (status < 200 || status > 299 || !Array.isArray(body.workflow_runs))
      throw new Error(
        `listing the runs of workflow ${workflowId} of ${repo.owner}/${repo.repo} failed: HTTP ${status}`,
      );
    return body.workflow_runs.filter((r) => typeof r.id === 'number').map((r) => factsOf(r.id!, r));
  }

  /** The runs an artifact may come from: this run's workflow (from the API) and branch (or `artifact-branch`). */
  private async wanted(repo: Repo): Promise<Wanted> {
    const runId = Number(process.env.GITHUB_RUN_ID);
    if (!Number.isSafeInteger(runId) || runId <= 0)
      throw new UserError('GITHUB_RUN_ID is not set: the artifact store only works in a GitHub Actions job');
    const me = await this.runFacts(repo, runId);
    if (!me) throw new Error(`run ${runId} of ${repo.owner}/${repo.repo}: no answer`);
    const branch = this.opts.branch || currentBranch(process.env);
    if (branch === '')
      throw new UserError(
        'which branch to restore the artifact of cannot be told (GITHUB_HEAD_REF and GITHUB_REF_NAME are empty): set input `artifact-branch`',
      );
    return {
      repository: `${repo.owner}/${repo.repo}`,
      repositoryId: me.repository?.id,
      workflowId: me.workflowId,
      workflowPath: me.path || workflowPathOfRef(process.env.GITHUB_WORKFLOW_REF),
      branch,
    };
  }

  /**
   * One run (`GET …/actions/runs/{id}`). `missingOk`: null when the repository has no such run (else a
   * 404 is the refusal it is for this run's own record: a private repository hides it from a token without
   * `actions: read`).
   */
  private async runFacts(repo: Repo, runId: number, missingOk = false): Promise<RunFacts | null> {
    const res = await this.api(repo, `actions/runs/${runId}`, {}, missingOk);
    const status = res.message.statusCode ?? 0;
    const text = await res.readBody();
    if (status === 404) return null;
    let run: RestRun | undefined;
    try {
      run = JSON.parse(text) as RestRun;
    } catch {
      // An error page is not JSON; the status says enough.
    }
    if (status < 200 || status > 299 || !run || typeof run !== 'object')
      throw new Error(`reading run ${runId} of ${repo.owner}/${repo.repo} failed: HTTP ${status}`);
    return factsOf(runId, run);
  }

  /**
   * Downloads an artifact of another run: the REST API answers 302 to a signed blob URL, fetched without
   * our token. Done here rather than by the toolkit, whose REST client fixes its API URL when first
   * imported and retries a failed download for half a minute. The digest recorded at upload is checked.
   */
  private async downloadFromRun(repo: Repo, found: Found, name: string, dir: string): Promise<string> {
    const res = await this.api(repo, `actions/artifacts/${found.id}/zip`, {});
    const status = res.message.statusCode ?? 0;
    const location = res.message.headers.location;
    await res.readBody();
    if (status === 410) throw new Error(`artifact ${name} (id ${found.id}) expired while it was being fetched`);
    if (status !== 302 || !location)
      throw new Error(
        `downloading artifact ${name} (id ${found.id}): GitHub answered HTTP ${status}, not a redirect to the file`,
      );
    const blob = await new HttpClient('remote-files', undefined, { allowRetries: true, maxRetries: 3 }).get(location);
    const blobStatus = blob.message.statusCode ?? 0;
    if (blobStatus !== 200) {
      await blob.readBody();
      throw new Error(`downloading artifact ${name} (id ${found.id}): blob storage answered HTTP ${blobStatus}`);
    }
    const file = join(dir, name);
    const hash = createHash('sha256');
    await pipeline(
      blob.message,
      async function* (chunks: AsyncIterable<Buffer>) {
        for await (const chunk of chunks) {
          hash.update(chunk);
          yield chunk;
        }
      },
      createWriteStream(file, { flags: 'wx', mode: 0o600 }),
    );
    const digest = `sha256:${hash.digest('hex')}`;
    if (found.digest && found.digest !== digest)
      throw new Error(`artifact ${name} (id ${found.id}): the download does not match the artifact's digest`);
    return file;
  }

  private async rest(repo: Repo, path: string, query: Record<string, string>): Promise<{ artifacts: RestArtifact[] }> {
    const res = await this.api(repo, path, query);
    const status = res.message.statusCode ?? 0;
    const text = await res.readBody();
    let body: { message?: string; artifacts?: RestArtifact[] } = {};
    try {
      body = JSON.parse(text) as typeof body;
    } catch {
      // An error page is not JSON; the status says enough.
    }
    if (status < 200 || status > 299 || !Array.isArray(body.artifacts)) {
      throw new Error(
        `listing the artifacts of ${repo.owner}/${repo.repo} failed: HTTP ${status}${body.message ? ` (${body.message})` : ''}`,
      );
    }
    return { artifacts: body.artifacts };
  }

  /**
   * One GET of the REST API with the token; a refusal becomes an error that names the permission.
   * `notFoundOk`: a 404 is returned to the caller (a run that does not exist) instead.
   */
  private async api(
    repo: Repo,
    path: string,
    query: Record<string, string>,
    notFoundOk = false,
  ): Promise<HttpClientResponse> {
    if (this.opts.githubToken === '') {
      throw new UserError(
        'input `github-token` is empty: finding the artifact of an earlier run needs a token with `actions: read` (the default `${{ github.token }}` has it unless `permissions` removes it)',
      );
    }
    // Read at each call (not at import), so it always agrees with the rest of the environment.
    const base = (process.env.GITHUB_API_URL || 'https://api.github.com').replace(/\/+$/, '');
    const qs = new URLSearchParams(query).toString();
    const url = `${base}/repos/${repo.owner}/${repo.repo}/${path}${qs ? `?${qs}` : ''}`;
    // @actions/http-client, like the toolkit: it honours the runner's proxy settings. Redirects are
    // followed by hand, so the token never travels to blob storage.
    const http = new HttpClient('remote-files', undefined, {
      allowRetries: true,
      maxRetries: 3,
      allowRedirects: false,
    });
    const res = await http.get(url, {
      accept: 'application/vnd.github+json',
      authorization: `Bearer ${this.opts.githubToken}`,
      'x-github-api-version': '2022-11-28',
    });
    const status = res.message.statusCode ?? 0;
    if (status === 401 || status === 403 || (status === 404 && !notFoundOk)) {
      let message = '';
      try {
        message = (JSON.parse(await res.readBody()) as { message?: string }).message ?? '';
      } catch {
        // Not JSON: the status alone.
      }
      // A token without access to the repository's Actions sees 403, or 404 on a private repository.
      throw new UserError(
        `reading the artifacts of ${repo.owner}/${repo.repo} was refused (HTTP ${status}${message ? `: ${message}` : ''}): the token in \`github-token\` needs \`actions: read\` (add \`permissions: { actions: read }\` to the job)`,
      );
    }
    return res;
  }
}

/** This run's newest artifact of that name (a job earlier in the run, or an earlier attempt of this one). */
async function thisRunArtifact(client: DefaultArtifactClient, name: string): Promise<Found | null> {
  // Listing instead of getArtifact: "none yet" is the normal first run, not a failure to warn about.
  const { artifacts } = await client.listArtifacts({ latest: true });
  const a = artifacts.find((x) => x.name === name);
  return a ? { id: a.id, runId: undefined, digest: a.digest } : null;
}

/** Pages of 100 runs read at most (a skipped run costs nothing more), and eligible runs whose artifacts are asked for at most. */
const MAX_RUN_PAGES = 50;
const MAX_RUNS_ASKED = 100;

/** A run as the REST API gives it, as the origin rule reads it. */
function factsOf(runId: number, run: RestRun): RunFacts {
  const repoOf = (r: RestRun['repository']) =>
    r && typeof r.id === 'number' && typeof r.full_name === 'string' ? { id: r.id, fullName: r.full_name } : null;
  return {
    id: runId,
    workflowId: typeof run.workflow_id === 'number' ? run.workflow_id : undefined,
    path: typeof run.path === 'string' ? run.path : '',
    event: typeof run.event === 'string' ? run.event : '',
    headBranch: typeof run.head_branch === 'string' ? run.head_branch : '',
    repository: repoOf(run.repository),
    headRepository: repoOf(run.head_repository),
  };
}

/** The newest unexpired artifact of that name in a listing (ids grow with time), and how many had expired. */
function pick(list: RestArtifact[], name: string, runId?: number): { found: Found | null; expired: number } {
  const named = list.filter((a) => a.name === name);
  const live = named.filter((a) => !a.expired).sort((a, b) => b.id - a.id)[0];
  const expired = named.filter((a) => a.expired).length;
  if (!live) return { found: null, expired };
  const run = runId ?? live.workflow_run?.id;
  if (run === undefined)
    throw new Error(`artifact ${name} (id ${live.id}): GitHub did not say which run it belongs to`);
  return { found: { id: live.id, runId: run, digest: live.digest ?? undefined }, expired };
}

/** The one file a raw (unzipped) artifact download leaves in its empty folder. */
function downloadedFile(dir: string, name: string): string {
  const names = readdirSync(dir);
  const only = names.length === 1 ? join(dir, names[0]!) : null;
  if (!only || !lstatSync(only).isFile()) {
    throw new Error(
      `artifact ${name}: expected one snapshot file in the download, found ${names.length === 0 ? 'nothing' : names.join(', ')} (was it uploaded by remote-files?)`,
    );
  }
  return only;
}

interface Repo {
  owner: string;
  repo: string;
}

function repository(): Repo {
  const [owner, repo, ...rest] = (process.env.GITHUB_REPOSITORY ?? '').split('/');
  if (!owner || !repo || rest.length > 0)
    throw new UserError(
      'GITHUB_REPOSITORY is not set to owner/name: the artifact store only works in a GitHub Actions job',
    );
  return { owner, repo };
}

/**
 * Whether @actions/artifact is @github/local-action's stand-in, which keeps artifacts as files in
 * LOCAL_ACTION_ARTIFACT_PATH and needs no runtime: it exports the client alone, none of the toolkit's
 * error classes.
 */
function standIn(): boolean {
  return typeof (toolkit as Partial<typeof toolkit>).ArtifactNotFoundError !== 'function';
}

function requireRuntime(): void {
  if (standIn()) {
    if (!process.env.LOCAL_ACTION_ARTIFACT_PATH || !process.env.LOCAL_ACTION_WORKSPACE) {
      throw new UserError(
        'store: artifact under @github/local-action needs LOCAL_ACTION_ARTIFACT_PATH and LOCAL_ACTION_WORKSPACE (existing folders) in its .env file',
      );
    }
    return;
  }
  if (!process.env.ACTIONS_RUNTIME_TOKEN || !process.env.ACTIONS_RESULTS_URL) {
    throw new UserError(
      'store: artifact needs the Actions runtime (ACTIONS_RUNTIME_TOKEN and ACTIONS_RESULTS_URL are not set): it only works in a GitHub Actions job',
    );
  }
}
