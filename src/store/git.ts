import { execFile } from 'node:child_process';
import { UserError } from '../errors.js';

/**
 * Every git command the action runs goes through here, with its arguments and environment made
 * explicit (as actions/checkout's GitCommandManager does). The data folder holds salvaged content,
 * which may be a hostile server's: git must never run anything on its behalf, nor see a secret.
 */

/**
 * Configuration given to every command, above whatever the workspace, the user or the system set:
 * - no hooks and no fsmonitor: either would run a program of someone else's choosing on the runner;
 * - no submodule recursion and no automatic gc or maintenance (background work outliving the step);
 * - no line-ending conversion: the data folder's own attributes already say so (data-folder.ts); this
 *   covers a commit made before that file exists;
 * - file names printed as they are, so messages name paths people can find.
 */
export const HARDENING = [
  'core.hooksPath=/dev/null',
  'core.fsmonitor=false',
  'core.untrackedCache=false',
  'core.autocrlf=false',
  'core.safecrlf=false',
  'core.quotepath=off',
  'submodule.recurse=false',
  'fetch.recurseSubmodules=false',
  'push.recurseSubmodules=no',
  'gc.auto=0',
  'maintenance.auto=false',
];

/**
 * The only variables git is given. Nothing named INPUT_* (the action's inputs: the private key, the
 * password, age identities), no token of the runner's; a push authenticates with what the checkout
 * configured (actions/checkout's extraheader), or an SSH agent / GIT_SSH_COMMAND the workflow set up.
 */
const PASSED =
  /^(PATH|HOME|USER|LOGNAME|LANG|LANGUAGE|LC_[A-Z]+|TZ|TMPDIR|TEMP|TMP|SYSTEMROOT|SystemRoot|COMSPEC|ComSpec|PATHEXT|WINDIR|APPDATA|LOCALAPPDATA|USERPROFILE|HOMEDRIVE|HOMEPATH|XDG_CONFIG_HOME|SSH_AUTH_SOCK|GIT_SSH|GIT_SSH_COMMAND|GIT_SSH_VARIANT|GIT_CONFIG_GLOBAL|GIT_CONFIG_NOSYSTEM|GIT_EXEC_PATH|https?_proxy|HTTPS?_PROXY|no_proxy|NO_PROXY|all_proxy|ALL_PROXY)$/;

/** The environment git runs with: the allow-list above from `from`, then our own settings. */
export function gitEnvironment(from: NodeJS.ProcessEnv, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(from)) if (PASSED.test(k) && v !== undefined) env[k] = v;
  // Never wait for a password nobody will type; data folder names are paths, never glob patterns.
  return { ...env, GIT_TERMINAL_PROMPT: '0', GIT_LITERAL_PATHSPECS: '1', ...extra };
}

const MiB = 1024 * 1024;

/** A failed git command; `detail` is git's stderr, cleaned by `Git.redact`. */
export class GitError extends Error {
  override name = 'GitError';
  constructor(
    command: string,
    readonly code: number | null,
    readonly detail: string,
  ) {
    super(`git ${command} failed${code !== null ? ` (exit ${code})` : ''}: ${detail}`);
  }
}

export class Git {
  /** Remote URLs, shown as `origin` in messages. */
  private readonly hidden: string[] = [];

  constructor(readonly cwd: string) {}

  /** Keeps `url` (as configured, and as git prints it without its userinfo) out of every message. */
  hide(url: string): void {
    const bare = url.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/@]*@/i, '$1');
    this.hidden.push(...new Set([url, bare].filter((u) => u.length > 0)));
  }

  /**
   * git's stderr fit for a log: a remote URL can hold a token, so the remote's URL becomes `origin` and
   * userinfo in any other URL is masked; `To <url>` and `hint:` lines (advice to pull, which this store
   * does itself) are dropped.
   */
  private redact(text: string): string {
    let out = text
      .split('\n')
      .filter((line) => !/^(To |hint:)/.test(line))
      .join('\n');
    for (const url of [...this.hidden].sort((a, b) => b.length - a.length)) out = out.split(url).join('origin');
    return out.replace(/([a-z][a-z0-9+.-]*:\/\/)[^\s/@]+@/gi, '$1***@').trim() || 'no output';
  }

  run(args: string[], opts: { env?: Record<string, string>; config?: string[] } = {}): Promise<string> {
    const env = gitEnvironment(process.env, opts.env);
    const config = [...HARDENING, ...(opts.config ?? [])].flatMap((c) => ['-c', c]);
    return new Promise((resolve, reject) => {
      execFile(
        'git',
        [...config, ...args],
        { cwd: this.cwd, env, encoding: 'utf8', maxBuffer: 64 * MiB },
        (err, stdout, stderr) => {
          if (!err) return resolve(stdout);
          if (err.code === 'ENOENT')
            return reject(new UserError('store: commit needs git, and git is not on the PATH'));
          reject(
            new GitError(
              args[0] ?? '',
              typeof err.code === 'number' ? err.code : null,
              // A git ended by a signal (a lost connection's ssh, the runner stopping it) prints nothing.
              this.redact(stderr || (err.signal ? `git was ended by ${err.signal}` : err.message)),
            ),
          );
        },
      );
    });
  }

  /** Null when git exits 1: the `-q` "no such thing" of rev-parse --verify and symbolic-ref. */
  async orNull(args: string[]): Promise<string | null> {
    try {
      return (await this.run(args)).trim();
    } catch (err) {
      if (err instanceof GitError && err.code === 1) return null;
      throw err;
    }
  }

  revParse(rev: string): Promise<string | null> {
    return this.orNull(['rev-parse', '-q', '--verify', rev]);
  }
}
