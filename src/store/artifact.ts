import { DefaultArtifactClient } from '@actions/artifact';
import { HttpClient, type HttpClientResponse } from '@actions/http-client';
import { createHash } from 'node:crypto';
import { createWriteStream, lstatSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { UserError } from '../errors.js';
import { tempRoot } from '../temp.js';
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
  workflow_run?: { id?: number } | null;
}

/**
 * Keeps the domain folder as a workflow artifact: ONE snapshot tar uploaded as is (no zip around it),
 * so modes, mtimes and symlinks survive, and a download is unpacked only by the strict unpacker.
 * Each run uploads its own copy; a restore takes this run's, else the one of `artifact-run-id`, else
 * the newest of an earlier run.
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

  async save(ctx: StoreContext, _changed: boolean): Promise<SaveResult> {
    // Saved even when nothing changed: each run's artifact expires on its own schedule, and the newest
    // must not be one that is about to.
    return this.inEnv(async () => {
      requireRuntime();
      const name = this.artifactName(ctx.domain);
      const work = mkdtempSync(join(tempRoot(), 'remote-files-artifact-'));
      try {
        const file = join(work, name);
        const stats = await packSnapshot(ctx.domainDir, file, (rel, why) => ctx.warning(`not stored in the artifact: ${JSON.stringify(rel)} (${why})`));
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
        return { outputs: { 'artifact-id': String(up.id) }, summary: `uploaded artifact ${name} (id ${up.id}: ${describeStats(stats)})` };
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
        const repo = repository();
        const lookup = this.opts.runId !== undefined ? await this.findInRun(repo, this.opts.runId, name) : await this.findNewest(repo, name);
        if (!lookup.found) return { found: false, outputs: {}, summary: `no artifact ${name} found ${lookup.why}` };
        found = lookup.found;
        where = `run ${found.runId}`;
      }
      const work = mkdtempSync(join(tempRoot(), 'remote-files-artifact-'));
      try {
        let file: string;
        if (found.runId === undefined) {
          const got = await client.downloadArtifact(found.id, { path: work, skipDecompress: true, ...(found.digest ? { expectedHash: found.digest } : {}) });
          if (got.digestMismatch) throw new Error(`artifact ${name} (id ${found.id}): the download does not match the artifact's digest`);
          file = downloadedFile(work, name);
        } else {
          file = await this.downloadFromRun(repository(), found, name, work);
        }
        const stats = await restoreSnapshot(file, ctx.domainDir);
        return { found: true, outputs: { 'artifact-id': String(found.id) }, summary: `restored artifact ${name} (id ${found.id}, ${where}: ${describeStats(stats)})` };
      } finally {
        rmSync(work, { recursive: true, force: true });
      }
    });
  }

  private inEnv<T>(fn: () => Promise<T>): Promise<T> {
    return withProcessEnv(this.opts.env ?? {}, undefined, fn);
  }

  /** The artifact of that name in one given run (input `artifact-run-id`). */
  private async findInRun(repo: Repo, runId: number, name: string): Promise<{ found: Found | null; why: string }> {
    const list = await this.rest(repo, `actions/runs/${runId}/artifacts`, { name, per_page: '100' });
    const r = pick(list.artifacts, name, runId);
    return { found: r.found, why: `in run ${runId}${r.expired ? ` (${r.expired} expired)` : ''}` };
  }

  /**
   * The newest artifact of that name in the repository. GitHub lists newest first; later pages are read
   * only while every artifact seen so far has expired.
   */
  private async findNewest(repo: Repo, name: string): Promise<{ found: Found | null; why: string }> {
    let expired = 0;
    for (let page = 1; page <= 10; page++) {
      const list = await this.rest(repo, 'actions/artifacts', { name, per_page: '100', page: String(page) });
      const r = pick(list.artifacts, name);
      if (r.found) return { found: r.found, why: '' };
      expired += r.expired;
      if (list.artifacts.length < 100) break;
    }
    return { found: null, why: `in this run or an earlier one${expired ? ` (${expired} expired)` : ''}` };
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
    if (status !== 302 || !location) throw new Error(`downloading artifact ${name} (id ${found.id}): GitHub answered HTTP ${status}, not a redirect to the file`);
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
    if (found.digest && found.digest !== digest) throw new Error(`artifact ${name} (id ${found.id}): the download does not match the artifact's digest`);
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
      throw new Error(`listing the artifacts of ${repo.owner}/${repo.repo} failed: HTTP ${status}${body.message ? ` (${body.message})` : ''}`);
    }
    return { artifacts: body.artifacts };
  }

  /** One GET of the REST API with the token; a refusal becomes an error that names the permission. */
  private async api(repo: Repo, path: string, query: Record<string, string>): Promise<HttpClientResponse> {
    if (this.opts.githubToken === '') {
      throw new UserError('input `github-token` is empty: finding the artifact of an earlier run needs a token with `actions: read` (the default `${{ github.token }}` has it unless `permissions` removes it)');
    }
    // Read at each call (not at import), so it always agrees with the rest of the environment.
    const base = (process.env.GITHUB_API_URL || 'https://api.github.com').replace(/\/+$/, '');
    const qs = new URLSearchParams(query).toString();
    const url = `${base}/repos/${repo.owner}/${repo.repo}/${path}${qs ? `?${qs}` : ''}`;
    // @actions/http-client, like the toolkit: it honours the runner's proxy settings. Redirects are
    // followed by hand, so the token never travels to blob storage.
    const http = new HttpClient('remote-files', undefined, { allowRetries: true, maxRetries: 3, allowRedirects: false });
    const res = await http.get(url, {
      accept: 'application/vnd.github+json',
      authorization: `Bearer ${this.opts.githubToken}`,
      'x-github-api-version': '2022-11-28',
    });
    const status = res.message.statusCode ?? 0;
    if (status === 401 || status === 403 || status === 404) {
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

/** The newest unexpired artifact of that name in a listing (ids grow with time), and how many had expired. */
function pick(list: RestArtifact[], name: string, runId?: number): { found: Found | null; expired: number } {
  const named = list.filter((a) => a.name === name);
  const live = named.filter((a) => !a.expired).sort((a, b) => b.id - a.id)[0];
  const expired = named.filter((a) => a.expired).length;
  if (!live) return { found: null, expired };
  const run = runId ?? live.workflow_run?.id;
  if (run === undefined) throw new Error(`artifact ${name} (id ${live.id}): GitHub did not say which run it belongs to`);
  return { found: { id: live.id, runId: run, digest: live.digest ?? undefined }, expired };
}

/** The one file a raw (unzipped) artifact download leaves in its empty folder. */
function downloadedFile(dir: string, name: string): string {
  const names = readdirSync(dir);
  const only = names.length === 1 ? join(dir, names[0]!) : null;
  if (!only || !lstatSync(only).isFile()) {
    throw new Error(`artifact ${name}: expected one snapshot file in the download, found ${names.length === 0 ? 'nothing' : names.join(', ')} (was it uploaded by remote-files?)`);
  }
  return only;
}

interface Repo {
  owner: string;
  repo: string;
}

function repository(): Repo {
  const [owner, repo, ...rest] = (process.env.GITHUB_REPOSITORY ?? '').split('/');
  if (!owner || !repo || rest.length > 0) throw new UserError('GITHUB_REPOSITORY is not set to owner/name: the artifact store only works in a GitHub Actions job');
  return { owner, repo };
}

function requireRuntime(): void {
  if (!process.env.ACTIONS_RUNTIME_TOKEN || !process.env.ACTIONS_RESULTS_URL) {
    throw new UserError('store: artifact needs the Actions runtime (ACTIONS_RUNTIME_TOKEN and ACTIONS_RESULTS_URL are not set): it only works in a GitHub Actions job');
  }
}

