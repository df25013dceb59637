// The GitHub services behind @actions/artifact and @actions/cache, on loopback, for tests with the real
// clients: Azurite (Microsoft's Azure Storage emulator, a child process) holds the blobs, and a small
// node:http double answers the JSON Twirp calls of the results service (ArtifactService, CacheService)
// and the REST endpoints used to find and download artifacts of other runs. Signed URLs are real SAS
// URLs made with Azurite's well-known development key, so uploads and downloads take the same path as
// on GitHub (Put Block / Put Block List / Get Blob against blob storage).
//
// State is keyed by workflow run: `runEnv(runId, …)` gives the environment of another run (or another
// attempt or job of one), so a test simulates "a later run" by switching env. The env is plain strings,
// usable for process.env in-process or for a child process running the bundled action. A run also has
// what the REST API tells of it (`GET …/actions/runs/{id}`, and `workflow_run` in artifact listings):
// its workflow file, event, branch and head repository — a fork's for a fork's pull request, which runs
// in this repository and may upload artifacts here like any other run.
import {
  BlobSASPermissions,
  BlobServiceClient,
  type ContainerClient,
  StorageSharedKeyCredential,
  generateBlobSASQueryParameters,
} from '@azure/storage-blob';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, realpathSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { StoreContext } from '../../src/store/types.js';
import { testTempDir } from './temp.js';

/** Azurite's documented development account; its key is public and only valid against the emulator. */
const ACCOUNT = 'devstoreaccount1';
const ACCOUNT_KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';
const CONTAINER = 'actions-results';
export const REPOSITORY = 'octo-org/remote-files-fixture';
export const REPOSITORY_ID = 481516;
/** The workflow file runs belong to unless told otherwise. */
export const WORKFLOW = '.github/workflows/remote-files.yml';
const HEAD_SHA = 'f'.repeat(40);
const ARTIFACT_SERVICE = 'github.actions.results.api.v1.ArtifactService';
const CACHE_SERVICE = 'github.actions.results.api.v1.CacheService';

export interface ArtifactView {
  id: number;
  name: string;
  runId: number;
  size: number;
  digest: string | undefined;
  finalized: boolean;
  expired: boolean;
  createdAt: Date;
  /** From CreateArtifact's expires_at (the retention the client asked for); undefined = the repository's. */
  expiresAt: Date | undefined;
}

export interface CacheView {
  id: number;
  key: string;
  version: string;
  size: number;
  finalized: boolean;
}

export interface ActionsServices {
  /** Everything a process needs to reach the services as run `firstRunId`, attempt 1, job `backup`. */
  env: Record<string, string>;
  firstRunId: number;
  /** A token the REST double accepts with `actions: read`. */
  githubToken: string;
  /** A token the REST double knows but answers 403 "Resource not accessible by integration" (no `actions: read`). */
  deniedToken: string;
  /**
   * The env of another run, attempt or job (same services, a runtime token for that run). The options
   * that describe the run (workflow, event, branch, fork) are what the REST API then says of it: give the
   * same ones at each call for one run.
   */
  runEnv(runId: number, opts?: RunOptions): Record<string, string>;
  /** Every artifact the double holds (finalized or not, expired or not), oldest first. */
  artifacts(): ArtifactView[];
  /** Every cache entry, oldest first. */
  caches(): CacheView[];
  /** Makes an artifact expired, as its retention running out would. */
  expireArtifact(id: number): void;
  /**
   * Lists an artifact of that name for a run described by `run` (registered as runEnv would), without
   * uploading anything: a flood of others' artifacts that a restore must look past, never download.
   */
  plantArtifact(runId: number, run: RunOptions, name: string): void;
  /** Calls the double received, as "Service/Method" or "GET /path" (for asserting what a client did). */
  calls: string[];
  /** A folder for the test's own files, removed by stop(). */
  scratch: string;
  /** A store's view of a fresh workspace (a new folder in `scratch`) for `domain`; what it logs lands in `log`. */
  storeContext(domain: string): StoreContext & { log: string[] };
  stop(): Promise<void>;
}

export interface RunOptions {
  attempt?: number;
  job?: string;
  /** The workflow file (default WORKFLOW); each file has its own workflow id. */
  workflow?: string;
  /** Default `push`. `pull_request`/`pull_request_target` set GITHUB_HEAD_REF as the runner does. */
  event?: string;
  /** The branch the run is for: the pushed branch, or a pull request's head branch. Default `main`. */
  branch?: string;
  /** `owner/name` of the fork a pull request came from: the run's head repository. Default: none (this repository). */
  fork?: string;
}

interface RunRecord {
  id: number;
  workflowPath: string;
  event: string;
  branch: string;
  fork: string | undefined;
}

interface ArtifactRecord {
  id: number;
  name: string;
  runId: number;
  runBackendId: string;
  jobBackendId: string;
  blobName: string;
  size: number;
  digest: string | undefined;
  finalized: boolean;
  createdAt: number;
  expiresAt: number | undefined;
}

interface CacheRecord {
  id: number;
  key: string;
  version: string;
  blobName: string;
  size: number;
  finalized: boolean;
  createdAt: number;
}

/** A Twirp error: its JSON body is what the clients read (a non-JSON body makes them retry). */
class TwirpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    msg: string,
  ) {
    super(msg);
  }
}

class RestError extends Error {
  constructor(
    readonly status: number,
    msg: string,
  ) {
    super(msg);
  }
}

export async function startActionsServices(opts: { firstRunId?: number } = {}): Promise<ActionsServices> {
  const firstRunId = opts.firstRunId ?? 1000;
  const temp = testTempDir('rf-actions-');
  const runnerTemp = join(temp, 'runner-temp');
  mkdirSync(runnerTemp);
  const scratch = join(temp, 'scratch');
  mkdirSync(scratch);
  let workspaces = 0;
  let azurite: Awaited<ReturnType<typeof startAzurite>> | undefined;
  let server: http.Server | undefined;
  try {
    azurite = await startAzurite(join(temp, 'azurite'));
    const credential = new StorageSharedKeyCredential(ACCOUNT, ACCOUNT_KEY);
    const container = new BlobServiceClient(`${azurite.url}/${ACCOUNT}`, credential).getContainerClient(CONTAINER);
    await container.create();

    const githubToken = `ghs_${randomBytes(18).toString('hex')}`;
    const deniedToken = `ghs_${randomBytes(18).toString('hex')}`;
    const state = new DoubleState(container, credential, githubToken, deniedToken);
    server = http.createServer((req, res) => void state.handle(req, res));
    await new Promise<void>((resolve, reject) => {
      server!.once('error', reject);
      server!.listen(0, '127.0.0.1', resolve);
    });
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    state.apiBase = base;

    const common: Record<string, string> = {
      // Only the origin is used by the clients; the runner sets it with a trailing slash.
      ACTIONS_RESULTS_URL: `${base}/`,
      ACTIONS_CACHE_SERVICE_V2: 'true',
      // Not GHES to the toolkit (github.com, *.ghe.com or *.localhost), and never fetched.
      GITHUB_SERVER_URL: 'http://github.localhost',
      GITHUB_API_URL: base,
      GITHUB_REPOSITORY: REPOSITORY,
      GITHUB_REPOSITORY_ID: String(REPOSITORY_ID),
      GITHUB_REPOSITORY_OWNER: REPOSITORY.split('/')[0]!,
      GITHUB_SHA: HEAD_SHA,
      GITHUB_WORKFLOW: 'remote-files',
      RUNNER_TEMP: runnerTemp,
    };
    const runEnv = (runId: number, o: RunOptions = {}): Record<string, string> => {
      const attempt = o.attempt ?? 1;
      const job = o.job ?? 'backup';
      const runBackendId = uuidFor(`run/${runId}`);
      const jobBackendId = uuidFor(`job/${runId}/${attempt}/${job}`);
      state.runs.set(runBackendId, runId);
      const run: RunRecord = {
        id: runId,
        workflowPath: o.workflow ?? WORKFLOW,
        event: o.event ?? 'push',
        branch: o.branch ?? 'main',
        fork: o.fork,
      };
      state.runInfo.set(runId, run);
      // What the runner sets: a pull request's run is on refs/pull/N/merge (pull_request) or the base
      // branch (pull_request_target), with the head branch in GITHUB_HEAD_REF.
      const pr = run.event === 'pull_request' || run.event === 'pull_request_target';
      const ref = run.event === 'pull_request' ? `refs/pull/${runId}/merge` : `refs/heads/${pr ? 'main' : run.branch}`;
      return {
        ...common,
        GITHUB_EVENT_NAME: run.event,
        GITHUB_REF: ref,
        GITHUB_REF_NAME: ref.replace(/^refs\/(heads|pull)\//, ''),
        GITHUB_HEAD_REF: pr ? run.branch : '',
        GITHUB_BASE_REF: pr ? 'main' : '',
        GITHUB_WORKFLOW_REF: `${REPOSITORY}/${run.workflowPath}@${ref}`,
        GITHUB_RUN_ID: String(runId),
        GITHUB_RUN_ATTEMPT: String(attempt),
        GITHUB_RUN_NUMBER: String(runId),
        GITHUB_JOB: job,
        ACTIONS_RUNTIME_TOKEN: runtimeToken(runBackendId, jobBackendId),
      };
    };
    const running = server;
    const blobs = azurite;
    return {
      env: runEnv(firstRunId),
      firstRunId,
      githubToken,
      deniedToken,
      runEnv,
      calls: state.calls,
      scratch,
      storeContext: (domain) => {
        const workspace = join(scratch, `ws${++workspaces}`);
        mkdirSync(workspace, { recursive: true });
        const log: string[] = [];
        return {
          workspace,
          dataDir: 'data',
          domain,
          domainDir: join(workspace, 'data', domain),
          info: (m) => log.push(m),
          warning: (m) => log.push(`warning: ${m}`),
          log,
        };
      },
      artifacts: () => state.artifactViews(),
      caches: () =>
        state.caches.map((c) => ({ id: c.id, key: c.key, version: c.version, size: c.size, finalized: c.finalized })),
      plantArtifact: (runId, run, name) => {
        runEnv(runId, run);
        const id = state.nextId++;
        state.artifacts.push({
          id,
          name,
          runId,
          runBackendId: uuidFor(`run/${runId}`),
          jobBackendId: uuidFor(`job/${runId}/1/planted`),
          blobName: `artifacts/planted/${id}`,
          size: 1,
          digest: undefined,
          finalized: true,
          createdAt: Date.now(),
          expiresAt: undefined,
        });
      },
      expireArtifact: (id) => {
        const a = state.artifacts.find((x) => x.id === id);
        if (!a) throw new Error(`no artifact ${id}`);
        a.expiresAt = Date.now() - 1000;
      },
      stop: async () => {
        running.closeAllConnections();
        await new Promise<void>((resolve) => running.close(() => resolve()));
        await blobs.stop();
        rmSync(temp, { recursive: true, force: true });
      },
    };
  } catch (err) {
    server?.close();
    await azurite?.stop();
    rmSync(temp, { recursive: true, force: true });
    throw err;
  }
}

/** Sets `env` on process.env (for in-process clients) and returns the function that puts it back. */
export function applyEnv(env: Record<string, string>): () => void {
  const saved = Object.keys(env).map((k) => [k, process.env[k]] as const);
  Object.assign(process.env, env);
  return () => {
    for (const [k, v] of saved) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  };
}

/** Backend ids look like the real ones (UUIDs) and are stable per run/job, so a test can predict them. */
function uuidFor(seed: string): string {
  const h = createHash('sha256').update(seed).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-8${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

/** The runtime token is a JWT the clients only decode; its `scp` claim carries the backend ids. */
function runtimeToken(runBackendId: string, jobBackendId: string): string {
  const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const payload = {
    scp: `Actions.ExampleScope Actions.Results:${runBackendId}:${jobBackendId}`,
    exp: Math.floor(Date.now() / 1000) + 6 * 3600,
    iss: 'vstoken.actions.githubusercontent.localhost',
  };
  return `${b64({ typ: 'JWT', alg: 'RS256' })}.${b64(payload)}.${Buffer.from('not-verified').toString('base64url')}`;
}

function backendIdsOf(authorization: string | undefined): { run: string; job: string } | null {
  const m = /^Bearer (.+)$/i.exec(authorization ?? '');
  const part = m?.[1]?.split('.')[1];
  if (!part) return null;
  try {
    const claims = JSON.parse(Buffer.from(part, 'base64url').toString('utf8')) as { scp?: string };
    for (const scope of (claims.scp ?? '').split(' ')) {
      const [kind, run, job] = scope.split(':');
      if (kind === 'Actions.Results' && run && job) return { run, job };
    }
  } catch {
    return null;
  }
  return null;
}

class DoubleState {
  readonly runs = new Map<string, number>();
  /** What the REST API says of each run, by run id. */
  readonly runInfo = new Map<number, RunRecord>();
  private readonly workflowIds = new Map<string, number>();
  readonly artifacts: ArtifactRecord[] = [];
  readonly caches: CacheRecord[] = [];
  readonly calls: string[] = [];
  apiBase = '';
  nextId = 4001;
  private lastTime = 0;

  constructor(
    private readonly container: ContainerClient,
    private readonly credential: StorageSharedKeyCredential,
    private readonly githubToken: string,
    private readonly deniedToken: string,
  ) {}

  /** Strictly increasing timestamps, so "newest" is never a tie. */
  private now(): number {
    this.lastTime = Math.max(Date.now(), this.lastTime + 1);
    return this.lastTime;
  }

  artifactViews(): ArtifactView[] {
    return this.artifacts.map((a) => ({
      id: a.id,
      name: a.name,
      runId: a.runId,
      size: a.size,
      digest: a.digest,
      finalized: a.finalized,
      expired: this.expired(a),
      createdAt: new Date(a.createdAt),
      expiresAt: a.expiresAt === undefined ? undefined : new Date(a.expiresAt),
    }));
  }

  private expired(a: ArtifactRecord): boolean {
    return a.expiresAt !== undefined && a.expiresAt <= Date.now();
  }

  async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://double');
    try {
      const body = await readBody(req);
      const twirp = /^\/twirp\/([^/]+)\/([^/]+)$/.exec(url.pathname);
      if (twirp) {
        this.calls.push(`${twirp[1]!.split('.').pop()}/${twirp[2]}`);
        if (req.method !== 'POST') throw new TwirpError(404, 'bad_route', 'Twirp calls are POSTs');
        let input: Record<string, unknown>;
        try {
          input = JSON.parse(body.toString('utf8') || '{}') as Record<string, unknown>;
        } catch {
          throw new TwirpError(400, 'malformed', 'the request body is not JSON');
        }
        const ids = backendIdsOf(req.headers.authorization);
        if (!ids || !this.runs.has(ids.run))
          throw new TwirpError(401, 'unauthenticated', 'missing or unknown runtime token');
        const out = await this.twirp(twirp[1]!, twirp[2]!, input, ids);
        sendJson(res, 200, out);
        return;
      }
      this.calls.push(`${req.method} ${url.pathname}`);
      await this.rest(req, url, res);
    } catch (err) {
      if (err instanceof TwirpError) sendJson(res, err.status, { code: err.code, msg: err.message });
      else if (err instanceof RestError)
        sendJson(res, err.status, { message: err.message, documentation_url: 'https://docs.github.com/rest' });
      else sendJson(res, 500, { code: 'internal', msg: String((err as Error)?.stack ?? err), message: String(err) });
    }
  }

  // ---- Twirp: results service ----

  private async twirp(
    service: string,
    method: string,
    input: Record<string, unknown>,
    ids: { run: string; job: string },
  ): Promise<object> {
    if (service === ARTIFACT_SERVICE) {
      // The service authorises by the token: a job may only touch its own run's artifacts.
      const run = str(input.workflow_run_backend_id);
      if (run !== ids.run)
        throw new TwirpError(403, 'permission_denied', 'workflow_run_backend_id does not match the runtime token');
      switch (method) {
        case 'CreateArtifact':
          return this.createArtifact(input, ids);
        case 'FinalizeArtifact':
          return this.finalizeArtifact(input, ids);
        case 'ListArtifacts':
          return this.listArtifacts(input, ids);
        case 'GetSignedArtifactURL':
          return this.signedArtifactUrl(input, ids);
        case 'DeleteArtifact':
          return this.deleteArtifact(input, ids);
      }
    }
    if (service === CACHE_SERVICE) {
      switch (method) {
        case 'CreateCacheEntry':
          return this.createCacheEntry(input);
        case 'FinalizeCacheEntryUpload':
          return this.finalizeCacheEntry(input);
        case 'GetCacheEntryDownloadURL':
          return this.cacheDownloadUrl(input);
      }
    }
    throw new TwirpError(404, 'bad_route', `no method ${service}/${method}`);
  }

  private createArtifact(input: Record<string, unknown>, ids: { run: string; job: string }): object {
    const name = str(input.name);
    if (name === '') throw new TwirpError(400, 'invalid_argument', 'name is required');
    const clash = this.artifacts.find((a) => a.runBackendId === ids.run && a.name === name);
    // The real service refuses a second artifact of one name in a run (what breaks re-runs of a job).
    if (clash?.finalized)
      throw new TwirpError(
        409,
        'already_exists',
        `an artifact with this name already exists on the workflow run: ${name}`,
      );
    if (clash) this.artifacts.splice(this.artifacts.indexOf(clash), 1);
    const id = this.nextId++;
    const expires = typeof input.expires_at === 'string' ? Date.parse(input.expires_at) : undefined;
    this.artifacts.push({
      id,
      name,
      runId: this.runs.get(ids.run)!,
      runBackendId: ids.run,
      jobBackendId: str(input.workflow_job_run_backend_id),
      blobName: `artifacts/${ids.run}/${id}`,
      size: 0,
      digest: undefined,
      finalized: false,
      createdAt: this.now(),
      expiresAt: expires,
    });
    return { ok: true, signed_upload_url: this.sign(`artifacts/${ids.run}/${id}`, 'cw', 60) };
  }

  private async finalizeArtifact(input: Record<string, unknown>, ids: { run: string; job: string }): Promise<object> {
    const name = str(input.name);
    const a = this.artifacts.find((x) => x.runBackendId === ids.run && x.name === name && !x.finalized);
    if (!a) throw new TwirpError(404, 'not_found', `no artifact ${name} being uploaded in this run`);
    const size = Number(input.size ?? 0);
    const stored = await this.blobSize(a.blobName);
    if (stored === null) throw new TwirpError(400, 'invalid_argument', `artifact ${name}: nothing was uploaded`);
    if (stored !== size)
      throw new TwirpError(400, 'invalid_argument', `artifact ${name}: ${stored} bytes uploaded, ${size} announced`);
    a.size = size;
    a.digest = typeof input.hash === 'string' ? input.hash : undefined;
    a.finalized = true;
    return { ok: true, artifact_id: String(a.id) };
  }

  private listArtifacts(input: Record<string, unknown>, ids: { run: string; job: string }): object {
    const nameFilter = typeof input.name_filter === 'string' ? input.name_filter : undefined;
    const idFilter = input.id_filter === undefined ? undefined : Number(input.id_filter);
    const artifacts = this.artifacts
      .filter((a) => a.runBackendId === ids.run && a.finalized && !this.expired(a))
      .filter(
        (a) => (nameFilter === undefined || a.name === nameFilter) && (idFilter === undefined || a.id === idFilter),
      )
      .map((a) => ({
        workflow_run_backend_id: a.runBackendId,
        workflow_job_run_backend_id: a.jobBackendId,
        database_id: String(a.id),
        name: a.name,
        size: String(a.size),
        created_at: new Date(a.createdAt).toISOString(),
        ...(a.digest !== undefined && { digest: a.digest }),
      }));
    return { artifacts };
  }

  private signedArtifactUrl(input: Record<string, unknown>, ids: { run: string; job: string }): object {
    const name = str(input.name);
    const a = this.artifacts.find(
      (x) => x.runBackendId === ids.run && x.name === name && x.finalized && !this.expired(x),
    );
    if (!a) throw new TwirpError(404, 'not_found', `no artifact ${name} in this run`);
    return { signed_url: this.sign(a.blobName, 'r', 10, a.name) };
  }

  private async deleteArtifact(input: Record<string, unknown>, ids: { run: string; job: string }): Promise<object> {
    const name = str(input.name);
    const a = this.artifacts.find((x) => x.runBackendId === ids.run && x.name === name && x.finalized);
    if (!a) throw new TwirpError(404, 'not_found', `no artifact ${name} in this run`);
    await this.dropArtifact(a);
    return { ok: true, artifact_id: String(a.id) };
  }

  private async dropArtifact(a: ArtifactRecord): Promise<void> {
    this.artifacts.splice(this.artifacts.indexOf(a), 1);
    await this.container.getBlobClient(a.blobName).deleteIfExists();
  }

  private createCacheEntry(input: Record<string, unknown>): object {
    const key = str(input.key);
    const version = str(input.version);
    if (key === '' || version === '') throw new TwirpError(400, 'invalid_argument', 'key and version are required');
    // Cache entries are immutable: one key and version is written once.
    if (this.caches.some((c) => c.key === key && c.version === version)) {
      throw new TwirpError(
        409,
        'already_exists',
        `cache entry with the same key, version, and scope already exists: ${key}`,
      );
    }
    const id = this.nextId++;
    const blobName = `caches/${id}`;
    this.caches.push({ id, key, version, blobName, size: 0, finalized: false, createdAt: this.now() });
    return { ok: true, signed_upload_url: this.sign(blobName, 'cw', 60) };
  }

  private async finalizeCacheEntry(input: Record<string, unknown>): Promise<object> {
    const key = str(input.key);
    const version = str(input.version);
    const c = this.caches.find((x) => x.key === key && x.version === version && !x.finalized);
    if (!c) return { ok: false, entry_id: '0', message: `no cache entry ${key} is being uploaded` };
    const size = Number(input.size_bytes ?? 0);
    const stored = await this.blobSize(c.blobName);
    if (stored === null || stored !== size)
      return { ok: false, entry_id: '0', message: `cache ${key}: ${stored ?? 0} bytes uploaded, ${size} announced` };
    c.size = size;
    c.finalized = true;
    c.createdAt = this.now();
    return { ok: true, entry_id: String(c.id) };
  }

  /** Exact key, then the key as a prefix, then each restore key as a prefix; the newest entry wins. */
  private cacheDownloadUrl(input: Record<string, unknown>): object {
    const key = str(input.key);
    const version = str(input.version);
    const restoreKeys = Array.isArray(input.restore_keys) ? input.restore_keys.map(str) : [];
    const usable = this.caches.filter((c) => c.finalized && c.version === version);
    const newest = (list: CacheRecord[]) => list.sort((a, b) => b.createdAt - a.createdAt)[0];
    const hit =
      newest(usable.filter((c) => c.key === key)) ??
      newest(usable.filter((c) => c.key.startsWith(key))) ??
      restoreKeys.map((p) => newest(usable.filter((c) => c.key.startsWith(p)))).find((c) => c !== undefined);
    if (!hit) return { ok: false, signed_download_url: '', matched_key: '' };
    return { ok: true, signed_download_url: this.sign(hit.blobName, 'r', 10), matched_key: hit.key };
  }

  // ---- REST: api.github.com ----

  private async rest(req: http.IncomingMessage, url: URL, res: http.ServerResponse): Promise<void> {
    const auth = /^(?:token|bearer) (.+)$/i.exec(req.headers.authorization ?? '')?.[1];
    if (auth !== this.githubToken && auth !== this.deniedToken) throw new RestError(401, 'Bad credentials');
    const m = /^\/repos\/([^/]+)\/([^/]+)\/actions\/(.+)$/.exec(url.pathname);
    if (!m || `${m[1]}/${m[2]}` !== REPOSITORY) throw new RestError(404, 'Not Found');
    // A token without `actions: read` gets exactly this answer from GitHub.
    if (auth === this.deniedToken) throw new RestError(403, 'Resource not accessible by integration');
    const rest = m[3]!;
    const finalized = this.artifacts.filter((a) => a.finalized);
    let r: RegExpExecArray | null;
    if (req.method === 'GET' && rest === 'artifacts') {
      sendJson(res, 200, this.page(finalized, url));
    } else if (req.method === 'GET' && (r = /^workflows\/(\d+)\/runs$/.exec(rest))) {
      // This workflow's runs, newest first, `branch` (the head branch) filtered as GitHub does.
      const workflowId = Number(r[1]);
      const branch = url.searchParams.get('branch');
      const perPage = Math.min(100, Number(url.searchParams.get('per_page') ?? 30) || 30);
      const page = Math.max(1, Number(url.searchParams.get('page') ?? 1) || 1);
      const runs = [...this.runInfo.values()]
        .filter((x) => this.workflowId(x.workflowPath) === workflowId && (branch === null || x.branch === branch))
        .sort((a, b) => b.id - a.id);
      sendJson(res, 200, {
        total_count: runs.length,
        workflow_runs: runs.slice((page - 1) * perPage, page * perPage).map((x) => this.restRun(x)),
      });
    } else if (req.method === 'GET' && (r = /^runs\/(\d+)$/.exec(rest))) {
      const run = this.runInfo.get(Number(r[1]));
      if (!run) throw new RestError(404, 'Not Found');
      sendJson(res, 200, this.restRun(run));
    } else if (req.method === 'GET' && (r = /^runs\/(\d+)\/artifacts$/.exec(rest))) {
      const runId = Number(r[1]);
      sendJson(
        res,
        200,
        this.page(
          finalized.filter((a) => a.runId === runId),
          url,
        ),
      );
    } else if ((r = /^artifacts\/(\d+)(?:\/(zip))?$/.exec(rest))) {
      const a = finalized.find((x) => x.id === Number(r![1]));
      if (!a) throw new RestError(404, 'Not Found');
      if (req.method === 'DELETE' && !r[2]) {
        await this.dropArtifact(a);
        res.writeHead(204).end();
      } else if (req.method === 'GET' && r[2]) {
        if (this.expired(a)) throw new RestError(410, 'Artifact has expired');
        res.writeHead(302, { location: this.sign(a.blobName, 'r', 1, a.name) }).end();
      } else if (req.method === 'GET') {
        sendJson(res, 200, this.restArtifact(a));
      } else {
        throw new RestError(404, 'Not Found');
      }
    } else {
      throw new RestError(404, 'Not Found');
    }
  }

  /** The REST list shape: newest first, `name` filter, `per_page` (max 100) and `page`. */
  private page(list: ArtifactRecord[], url: URL): object {
    const name = url.searchParams.get('name');
    const perPage = Math.min(100, Number(url.searchParams.get('per_page') ?? 30) || 30);
    const page = Math.max(1, Number(url.searchParams.get('page') ?? 1) || 1);
    const all = list.filter((a) => name === null || a.name === name).sort((a, b) => b.id - a.id);
    return {
      total_count: all.length,
      artifacts: all.slice((page - 1) * perPage, page * perPage).map((a) => this.restArtifact(a)),
    };
  }

  private restArtifact(a: ArtifactRecord): object {
    const run = this.runInfo.get(a.runId)!;
    const self = `${this.apiBase}/repos/${REPOSITORY}/actions/artifacts/${a.id}`;
    const iso = (t: number | undefined) => (t === undefined ? null : new Date(t).toISOString());
    return {
      id: a.id,
      node_id: Buffer.from(`Artifact${a.id}`).toString('base64'),
      name: a.name,
      size_in_bytes: a.size,
      url: self,
      archive_download_url: `${self}/zip`,
      expired: this.expired(a),
      created_at: iso(a.createdAt),
      updated_at: iso(a.createdAt),
      expires_at: iso(a.expiresAt ?? a.createdAt + 90 * 86400_000),
      digest: a.digest ?? null,
      workflow_run: {
        id: a.runId,
        repository_id: REPOSITORY_ID,
        head_repository_id: this.headRepository(run).id,
        head_branch: run.branch,
        head_sha: HEAD_SHA,
      },
    };
  }

  /** A fork gets an id of its own, stable per name. */
  private headRepository(run: RunRecord): { id: number; full_name: string } {
    return run.fork === undefined
      ? { id: REPOSITORY_ID, full_name: REPOSITORY }
      : {
          id: 900000 + (parseInt(createHash('sha256').update(run.fork).digest('hex').slice(0, 5), 16) % 99999),
          full_name: run.fork,
        };
  }

  private workflowId(path: string): number {
    if (!this.workflowIds.has(path)) this.workflowIds.set(path, 70001 + this.workflowIds.size);
    return this.workflowIds.get(path)!;
  }

  /** `GET /repos/{o}/{r}/actions/runs/{id}`, the fields GitHub documents (those that matter here filled in). */
  private restRun(run: RunRecord): object {
    const repo = (full: string, id: number) => ({
      id,
      node_id: Buffer.from(`Repository${id}`).toString('base64'),
      name: full.split('/')[1],
      full_name: full,
      owner: { login: full.split('/')[0] },
      private: false,
    });
    const head = this.headRepository(run);
    return {
      id: run.id,
      name: 'remote-files',
      node_id: Buffer.from(`WorkflowRun${run.id}`).toString('base64'),
      head_branch: run.branch,
      head_sha: HEAD_SHA,
      path: run.workflowPath,
      display_title: `run ${run.id}`,
      run_number: run.id,
      event: run.event,
      status: 'in_progress',
      conclusion: null,
      workflow_id: this.workflowId(run.workflowPath),
      url: `${this.apiBase}/repos/${REPOSITORY}/actions/runs/${run.id}`,
      run_attempt: 1,
      repository: repo(REPOSITORY, REPOSITORY_ID),
      head_repository: repo(head.full_name, head.id),
    };
  }

  // ---- blob storage ----

  /** A SAS URL for one blob, signed with the emulator's key like the service signs with the real one. */
  private sign(blobName: string, permissions: string, minutes: number, fileName?: string): string {
    const blob = this.container.getBlobClient(blobName);
    const sas = generateBlobSASQueryParameters(
      {
        containerName: CONTAINER,
        blobName,
        permissions: BlobSASPermissions.parse(permissions),
        startsOn: new Date(Date.now() - 60_000),
        expiresOn: new Date(Date.now() + minutes * 60_000),
        ...(fileName !== undefined && {
          contentDisposition: `attachment; filename="${fileName}"; filename*=UTF-8''${encodeURIComponent(fileName)}`,
        }),
      },
      this.credential,
    );
    return `${blob.url}?${sas.toString()}`;
  }

  private async blobSize(blobName: string): Promise<number | null> {
    try {
      const p = await this.container.getBlobClient(blobName).getProperties();
      return p.contentLength ?? 0;
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode === 404) return null;
      throw err;
    }
  }
}

function str(v: unknown): string {
  return typeof v === 'string' ? v : '';
}

function sendJson(res: http.ServerResponse, status: number, body: object): void {
  const text = JSON.stringify(body);
  res
    .writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) })
    .end(text);
}

async function readBody(req: http.IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/**
 * Azurite's blob service in memory on a free loopback port. Loose mode and no API version check: the
 * SDK bundled with the toolkit may speak a newer storage API version than the emulator knows.
 */
async function startAzurite(location: string): Promise<{ url: string; stop(): Promise<void> }> {
  mkdirSync(location, { recursive: true });
  const bin = realpathSync(fileURLToPath(new URL('../../node_modules/.bin/azurite-blob', import.meta.url)));
  const child: ChildProcess = spawn(
    process.execPath,
    [
      bin,
      '--inMemoryPersistence',
      '--blobHost',
      '127.0.0.1',
      '--blobPort',
      '0',
      '--loose',
      '--skipApiVersionCheck',
      '--disableTelemetry',
      '--extentMemoryLimit',
      '512',
    ],
    // Its working folder is ours: whatever it might write stays in the helper's temp folder.
    { stdio: ['ignore', 'pipe', 'pipe'], cwd: location },
  );
  // A test run that dies must not leave the emulator behind.
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  let output = '';
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`Azurite did not start within 30 s:\n${output}`)), 30_000);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      const m = /successfully listens on (http:\/\/127\.0\.0\.1:\d+)/.exec(output);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`Azurite exited (${code}) before listening:\n${output}`));
    });
  }).catch((err: Error) => {
    child.kill('SIGKILL');
    process.removeListener('exit', killOnExit);
    throw err;
  });
  // Keep draining its output so a full pipe never blocks it.
  child.stdout!.resume();
  child.stderr!.resume();
  return {
    url,
    stop: async () => {
      process.removeListener('exit', killOnExit);
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}
