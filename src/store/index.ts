import { UserError } from '../errors.js';
import type { StoreName } from '../inputs.js';
import type { Reporter } from '../report/reporter.js';
import type { ArtifactStoreOptions } from './artifact.js';
import type { CacheStoreOptions } from './cache.js';
import type { CommitOptions } from './commit.js';
import type { Store, StoreContext } from './types.js';

/** What makeStores needs: the stores the `store` input names, and each one's options. */
export interface StoresOptions {
  names: StoreName[];
  commit: CommitOptions;
  artifact: ArtifactStoreOptions;
  cache: CacheStoreOptions;
}

/** Whose data folder a store works on: `<workspace>/<dataDir>/<domain>`. */
export interface StoreWhere {
  workspace: string;
  dataDir: string;
  domain: string;
}

/**
 * The stores the `store` input names, in its order (restore loads from the first that has a copy).
 * Each is imported only when named: the toolkit clients behind them weigh megabytes, and a run
 * without them starts in half the time.
 */
export async function makeStores(s: StoresOptions): Promise<Store[]> {
  return Promise.all(
    s.names.map(async (name: StoreName): Promise<Store> => {
      switch (name) {
        case 'commit':
          return new (await import('./commit.js')).CommitStore(s.commit);
        case 'artifact':
          return new (await import('./artifact.js')).ArtifactStore({
            name: s.artifact.name,
            retentionDays: s.artifact.retentionDays,
            githubToken: s.artifact.githubToken,
            runId: s.artifact.runId,
            branch: s.artifact.branch,
          });
        case 'cache':
          return new (await import('./cache.js')).CacheStore(s.cache);
      }
    }),
  );
}

export function storeContext(s: StoreWhere, domainDir: string, out: Pick<Reporter, 'info' | 'warning'>): StoreContext {
  return {
    workspace: s.workspace,
    dataDir: s.dataDir,
    domain: s.domain,
    domainDir,
    info: (m) => out.info(m),
    warning: (m) => out.warning(m),
  };
}

export interface Loaded {
  from: Store | null;
  outputs: Record<string, string>;
  summary: string[];
}

/**
 * Brings the stored copy into the workspace from the first store that has one. `required` (restore,
 * verify) makes "nothing stored anywhere" an error; a backup only uses it as its incremental baseline.
 */
export async function loadFromStores(stores: Store[], ctx: StoreContext, required: boolean): Promise<Loaded> {
  const loaded: Loaded = { from: null, outputs: {}, summary: [] };
  for (const store of stores) {
    const r = await store.load(ctx);
    Object.assign(loaded.outputs, r.outputs);
    if (r.summary) loaded.summary.push(r.summary);
    if (r.found) {
      loaded.from = store;
      return loaded;
    }
  }
  if (required && stores.length > 0)
    throw nothingStored(
      ctx.domain,
      stores.map((x) => x.name),
    );
  return loaded;
}

/** The one message of a restore (or verify) with nothing stored, whatever the store, `none` included. */
export function nothingStored(domain: string, stores: string[]): UserError {
  return new UserError(
    `no stored copy of ${domain} in store ${stores.length ? stores.join(', ') : "none (the workspace's data folder)"}: nothing to restore or compare. Run a backup first (or check \`store\`, \`data-dir\` and \`domain\`)`,
  );
}

/**
 * Each store's preconditions, checked before connecting (a work tree and a remote for commit, the
 * Actions runtime for artifact and cache): a run that cannot persist must not first do the transfer.
 */
export async function checkStores(stores: Store[], ctx: StoreContext, saving: boolean): Promise<void> {
  for (const store of stores) await store.check?.(ctx, saving);
}

/** Persists the domain folder in every store; the first failure stops the run with its message. */
export async function saveToStores(
  stores: Store[],
  ctx: StoreContext,
  changed: boolean,
): Promise<{ outputs: Record<string, string>; summary: string[] }> {
  const outputs: Record<string, string> = {};
  const summary: string[] = [];
  for (const store of stores) {
    const r = await store.save(ctx, changed);
    Object.assign(outputs, r.outputs);
    if (r.summary) summary.push(r.summary);
  }
  return { outputs, summary };
}
