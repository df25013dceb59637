import { createRequire as __rfCreateRequire } from 'node:module';
import { fileURLToPath as __rfFileURLToPath } from 'node:url';
import { dirname as __rfDirname } from 'node:path';
var require = __rfCreateRequire(import.meta.url);
var __filename = __rfFileURLToPath(import.meta.url);
var __dirname = __rfDirname(__filename);
import {
  ATTRIBUTES_NAME,
  manifestPath
} from "./chunk-EUL36KN4.js";
import {
  isUnescapedGitName,
  require_child_process,
  require_crypto,
  tempRoot
} from "./chunk-I64HRVNT.js";
import {
  UserError,
  __commonJS,
  __require,
  __toESM,
  require_fs,
  require_path
} from "./chunk-BNJA3E5O.js";

// builtin-by-require:timers/promises
var require_promises = __commonJS({
  "builtin-by-require:timers/promises"(exports, module) {
    module.exports = __require("node:timers/promises");
  }
});

// src/store/commit.ts
var import_node_crypto2 = __toESM(require_crypto(), 1);
var import_node_fs2 = __toESM(require_fs(), 1);
var import_node_path2 = __toESM(require_path(), 1);
var import_promises = __toESM(require_promises(), 1);

// src/store/commit-baseline.ts
var import_node_crypto = __toESM(require_crypto(), 1);
var import_node_fs = __toESM(require_fs(), 1);
var import_node_path = __toESM(require_path(), 1);

// src/store/git.ts
var import_node_child_process = __toESM(require_child_process(), 1);
var HARDENING = [
  "core.hooksPath=/dev/null",
  "core.fsmonitor=false",
  "core.untrackedCache=false",
  "core.autocrlf=false",
  "core.safecrlf=false",
  "core.quotepath=off",
  "submodule.recurse=false",
  "fetch.recurseSubmodules=false",
  "push.recurseSubmodules=no",
  "gc.auto=0",
  "maintenance.auto=false"
];
var PASSED = /^(PATH|HOME|USER|LOGNAME|LANG|LANGUAGE|LC_[A-Z]+|TZ|TMPDIR|TEMP|TMP|SYSTEMROOT|SystemRoot|COMSPEC|ComSpec|PATHEXT|WINDIR|APPDATA|LOCALAPPDATA|USERPROFILE|HOMEDRIVE|HOMEPATH|XDG_CONFIG_HOME|SSH_AUTH_SOCK|GIT_SSH|GIT_SSH_COMMAND|GIT_SSH_VARIANT|GIT_CONFIG_GLOBAL|GIT_CONFIG_NOSYSTEM|GIT_EXEC_PATH|https?_proxy|HTTPS?_PROXY|no_proxy|NO_PROXY|all_proxy|ALL_PROXY)$/;
function gitEnvironment(from, extra = {}) {
  const env = {};
  for (const [k, v] of Object.entries(from)) if (PASSED.test(k) && v !== void 0) env[k] = v;
  return { ...env, GIT_TERMINAL_PROMPT: "0", GIT_LITERAL_PATHSPECS: "1", ...extra };
}
var MiB = 1024 * 1024;
var GitError = class extends Error {
  constructor(command, code, detail) {
    super(`git ${command} failed${code !== null ? ` (exit ${code})` : ""}: ${detail}`);
    this.code = code;
    this.detail = detail;
  }
  code;
  detail;
  name = "GitError";
};
var Git = class {
  constructor(cwd) {
    this.cwd = cwd;
  }
  cwd;
  /** Remote URLs, shown as `origin` in messages. */
  hidden = [];
  /** Keeps `url` (as configured, and as git prints it without its userinfo) out of every message. */
  hide(url) {
    const bare = url.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/@]*@/i, "$1");
    this.hidden.push(...new Set([url, bare].filter((u) => u.length > 0)));
  }
  /**
   * git's stderr fit for a log: a remote URL can hold a token, so the remote's URL becomes `origin` and
   * userinfo in any other URL is masked; `To <url>` and `hint:` lines (advice to pull, which this store
   * does itself) are dropped.
   */
  redact(text) {
    let out = text.split("\n").filter((line) => !/^(To |hint:)/.test(line)).join("\n");
    for (const url of [...this.hidden].sort((a, b) => b.length - a.length)) out = out.split(url).join("origin");
    return out.replace(/([a-z][a-z0-9+.-]*:\/\/)[^\s/@]+@/gi, "$1***@").trim() || "no output";
  }
  run(args, opts = {}) {
    const env = gitEnvironment(process.env, opts.env);
    const config = [...HARDENING, ...opts.config ?? []].flatMap((c) => ["-c", c]);
    return new Promise((resolve, reject) => {
      (0, import_node_child_process.execFile)(
        "git",
        [...config, ...args],
        { cwd: this.cwd, env, encoding: "utf8", maxBuffer: 64 * MiB },
        (err, stdout, stderr) => {
          if (!err) return resolve(stdout);
          if (err.code === "ENOENT")
            return reject(new UserError("store: commit needs git, and git is not on the PATH"));
          reject(
            new GitError(
              args[0] ?? "",
              typeof err.code === "number" ? err.code : null,
              // A git ended by a signal (a lost connection's ssh, the runner stopping it) prints nothing.
              this.redact(stderr || (err.signal ? `git was ended by ${err.signal}` : err.message))
            )
          );
        }
      );
    });
  }
  /** Null when git exits 1: the `-q` "no such thing" of rev-parse --verify and symbolic-ref. */
  async orNull(args) {
    try {
      return (await this.run(args)).trim();
    } catch (err) {
      if (err instanceof GitError && err.code === 1) return null;
      throw err;
    }
  }
  revParse(rev) {
    return this.orNull(["rev-parse", "-q", "--verify", rev]);
  }
};

// src/store/commit-baseline.ts
async function fetchTip(git, branch) {
  try {
    await git.run(["fetch", "-q", "--no-tags", "origin", `+refs/heads/${branch}:refs/remotes/origin/${branch}`]);
  } catch (err) {
    if (!(err instanceof GitError)) throw err;
    const missing = await git.run(["ls-remote", "--exit-code", "--heads", "origin", `refs/heads/${branch}`]).then(
      () => false,
      (e) => e instanceof GitError && e.code === 2
    );
    if (missing) return null;
    throw err;
  }
  return git.revParse(`refs/remotes/origin/${branch}`);
}
async function folderAt(git, commit, path) {
  const date = (await git.run(["show", "-s", "--format=%cI", commit])).trim();
  return { commit, date, tree: await folderTree(git, commit, path) };
}
async function folderTree(git, commit, path) {
  const id = await git.revParse(`${commit}:${path}`);
  if (id === null) return null;
  return (await git.run(["cat-file", "-t", id])).trim() === "tree" ? id : null;
}
async function isBehind(git, head, tip, unprovable) {
  if (tip.tree === null) return false;
  if (head === null) return true;
  if (head.tree === tip.tree) return false;
  if (await isAncestor(git, head.commit, tip.commit)) return true;
  if (await isAncestor(git, tip.commit, head.commit)) return false;
  const shallow = (await git.run(["rev-parse", "--is-shallow-repository"])).trim() === "true";
  if (!shallow || unprovable === "behind") return true;
  return Date.parse(tip.date) > Date.parse(head.date);
}
async function isAncestor(git, a, b) {
  return git.run(["merge-base", "--is-ancestor", a, b]).then(() => true).catch((err) => {
    if (err instanceof GitError && err.code === 1) return false;
    throw err;
  });
}
async function checkoutFolder(git, path, domainDir, at) {
  const parent = (0, import_node_path.dirname)(domainDir);
  const stageName = `.remote-files-stage-${(0, import_node_crypto.randomBytes)(6).toString("hex")}`;
  const stage = (0, import_node_path.join)(parent, stageName);
  const trash = (0, import_node_path.join)(parent, `.remote-files-old-${(0, import_node_crypto.randomBytes)(6).toString("hex")}`);
  const tmp = (0, import_node_fs.mkdtempSync)((0, import_node_path.join)(tempRoot(), "remote-files-checkout-"));
  try {
    if (at.tree !== null) {
      const env = { GIT_INDEX_FILE: (0, import_node_path.join)(tmp, "index") };
      const stagePath = `${(0, import_node_path.dirname)(path) === "." ? "" : `${(0, import_node_path.dirname)(path)}/`}${stageName}`;
      await git.run(["read-tree", `--prefix=${stagePath}/`, at.tree], { env });
      await git.run(["checkout-index", "-a", "-f"], { env });
    }
    if ((0, import_node_fs.existsSync)(domainDir)) (0, import_node_fs.renameSync)(domainDir, trash);
    if (at.tree !== null) (0, import_node_fs.renameSync)(stage, domainDir);
  } catch (err) {
    if (err instanceof GitError)
      throw new UserError(`store: commit could not check out ${path} as of ${at.commit.slice(0, 7)}: ${err.detail}`);
    throw err;
  } finally {
    (0, import_node_fs.rmSync)(stage, { recursive: true, force: true });
    (0, import_node_fs.rmSync)(trash, { recursive: true, force: true });
    (0, import_node_fs.rmSync)(tmp, { recursive: true, force: true });
  }
}
function commitLabel(at) {
  return `${at.commit.slice(0, 7)} (${at.date})`;
}

// src/store/commit.ts
var BOT_NAME = "github-actions[bot]";
var BOT_EMAIL = "41898282+github-actions[bot]@users.noreply.github.com";
var MiB2 = 1024 * 1024;
var REFUSE_BYTES = 100 * MiB2;
var WARN_BYTES = 50 * MiB2;
function checkCommitSizes(domainDir, workspace) {
  const refuse = [];
  const warn = [];
  const gitNames = [];
  const visit = (dir) => {
    let names;
    try {
      names = (0, import_node_fs2.readdirSync)(dir);
    } catch (err) {
      if (err.code === "ENOENT") return;
      throw err;
    }
    for (const name of names.sort()) {
      const path = (0, import_node_path2.join)(dir, name);
      if (isUnescapedGitName(name) && !(dir === domainDir && name === ATTRIBUTES_NAME)) {
        gitNames.push(toPosix((0, import_node_path2.relative)(workspace, path)));
        continue;
      }
      const st = (0, import_node_fs2.lstatSync)(path);
      if (st.isDirectory()) visit(path);
      else if (st.isFile() && st.size > WARN_BYTES) {
        (st.size > REFUSE_BYTES ? refuse : warn).push(
          `${toPosix((0, import_node_path2.relative)(workspace, path))} (${(st.size / MiB2).toFixed(1)} MiB)`
        );
      }
    }
  };
  visit(domainDir);
  return { refuse, warn, gitNames };
}
var CommitStore = class {
  constructor(opts) {
    this.opts = opts;
  }
  opts;
  name = "commit";
  /**
   * The branch's tip on origin as a backup found it before connecting (see baseline): the salvage it
   * builds on. A push rejected because that folder changed on origin since then must not replace it.
   */
  startTip;
  /** The checkout was behind startTip for the folder (baseline brought the tip's folder in). */
  behind = false;
  /**
   * A backup's baseline is the domain folder as the branch's tip on origin has it, not as the checkout
   * does: a re-run checks out the triggering commit, from before the salvage the first run pushed.
   * When the checkout is behind for the folder, the tip's folder replaces it in the workspace.
   */
  async baseline(ctx) {
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
    if (!await isBehind(repo.git, head, tip, "behind")) return [];
    this.behind = true;
    await checkoutFolder(repo.git, path, ctx.domainDir, tip);
    return [
      `The checkout${head ? ` (${commitLabel(head)})` : ""} is behind ${branch} on origin for ${path}: working from the salvage at the branch's tip, ${commitLabel(tip)}`
    ];
  }
  async save(ctx, _changed) {
    const sizes = checkCommitSizes(ctx.domainDir, ctx.workspace);
    if (sizes.gitNames.length > 0) {
      throw new UserError(
        `store: commit refuses to stage names git would act on, which remote-files never writes: ${sizes.gitNames.slice(0, 10).join(", ")}${sizes.gitNames.length > 10 ? ", \u2026" : ""}. They did not come from a backup of this version (salvaged names like these are stored escaped, see README "What the data folder looks like"); remove them from the data folder.`
      );
    }
    if (sizes.refuse.length > 0) {
      throw new UserError(
        `store: commit cannot push files over GitHub's 100 MiB limit:
${sizes.refuse.map((f) => `  ${f}`).join("\n")}
Use \`store: artifact\` or \`store: cache\` for this domain, or leave these files out with the \`exclude\` input.`
      );
    }
    if (sizes.warn.length > 0) {
      ctx.warning(
        `GitHub warns about files over 50 MiB, and every version stays in the repository's history: ${sizes.warn.join(", ")}. Consider \`store: artifact\` or \`store: cache\`, or the \`exclude\` input.`
      );
    }
    const repo = await openRepo(ctx.workspace);
    const path = repoPath(repo.top, ctx.workspace, ctx.domainDir);
    const branch = await this.resolveBranch(repo);
    const local = `refs/heads/${branch}`;
    const onBranch = repo.headRef === local;
    const git = repo.git;
    let base = onBranch && this.behind && this.startTip ? this.startTip.commit : repo.head;
    let localRef = "HEAD";
    let localOld = repo.head;
    if (!onBranch) {
      const localTip = await git.revParse(local);
      const remoteTip = this.opts.push ? await fetchTip(git, branch).catch(asUserError(`could not fetch ${branch} from origin`)) : null;
      if (remoteTip !== null) await this.refuseChangedMeanwhile(git, remoteTip, path, branch);
      base = remoteTip ?? localTip ?? repo.head;
      if (repo.headRef !== null) {
        localRef = local;
        localOld = localTip;
      }
    }
    const moveLocal = async (sha) => {
      await git.run([
        "update-ref",
        ...localRef === "HEAD" && !onBranch ? ["--no-deref"] : [],
        "-m",
        "remote-files: salvage",
        localRef,
        sha,
        localOld ?? ""
      ]);
      if (localRef === "HEAD") await stageFolder(git, path, ctx);
    };
    const tmp = (0, import_node_fs2.mkdtempSync)((0, import_node_path2.join)(tempRoot(), "remote-files-commit-"));
    try {
      const index = (0, import_node_path2.join)(tmp, "index");
      const snapshot = (0, import_node_fs2.existsSync)(ctx.domainDir) ? await snapshotTree(git, path, index) : null;
      const tree = await treeWith(git, base, path, snapshot, index);
      if (base !== null ? tree === (await git.run(["rev-parse", `${base}^{tree}`])).trim() : snapshot === null) {
        return {
          outputs: { "commit-sha": "", pushed: "false" },
          summary: `nothing to commit: ${path} is unchanged on ${branch}`
        };
      }
      const commit = (c, t) => this.commitTree(git, ctx.domain, c, t);
      const sha = await commit(base, tree);
      if (!this.opts.push) {
        await moveLocal(sha);
        return {
          outputs: { "commit-sha": sha, pushed: "false" },
          summary: `committed ${sha.slice(0, 7)} to ${branch} (not pushed: \`push\` is false)`
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
        (tip) => this.refuseChangedMeanwhile(git, tip, path, branch)
      );
      try {
        await moveLocal(pushed.sha);
      } catch (err) {
        if (!(err instanceof GitError)) throw err;
        ctx.warning(
          `pushed to ${branch}, but could not move the local ${localRef} to ${pushed.sha.slice(0, 7)}: ${err.detail}`
        );
      }
      if (pushed.alreadyThere) {
        return {
          outputs: { "commit-sha": "", pushed: "false" },
          summary: `nothing to push: ${branch} on origin already holds this snapshot of ${path}`
        };
      }
      const tries = pushed.attempt > 1 ? ` (attempt ${pushed.attempt})` : "";
      return {
        outputs: { "commit-sha": pushed.sha, pushed: "true" },
        summary: `committed ${pushed.sha.slice(0, 7)} and pushed to ${branch}${tries}`
      };
    } finally {
      (0, import_node_fs2.rmSync)(tmp, { recursive: true, force: true });
    }
  }
  /** Another run pushed this domain's folder since the baseline: building on it would replace a salvage it never saw. */
  async refuseChangedMeanwhile(git, tip, path, branch) {
    if (this.startTip === void 0) return;
    const now = await folderTree(git, tip, path);
    if (now === (this.startTip?.tree ?? null)) return;
    throw new UserError(
      `store: commit stopped: ${path} changed on ${branch} while this backup ran (now at ${tip.slice(0, 7)}, it was at ${this.startTip ? this.startTip.commit.slice(0, 7) : "no commit"}); another run salvaged this domain. Nothing was pushed and that salvage is untouched; run the backup again to build on it`
    );
  }
  /** A work tree holding the data folder, a branch to commit to and, with `push`, a remote (identity: the bot's by default). */
  async check(ctx, saving) {
    if (!saving) return;
    const repo = await openRepo(ctx.workspace);
    repoPath(repo.top, ctx.workspace, ctx.domainDir);
    await this.resolveBranch(repo);
    if (this.opts.push && !(await repo.git.run(["remote"])).split("\n").includes("origin")) {
      throw new UserError(
        `store: commit has no remote to push to: the repository at ${repo.top} has no \`origin\`. Check out with actions/checkout, set \`push: false\`, or use another \`store\``
      );
    }
  }
  /**
   * Restore and verify use the committed copy in the checkout, once it is known to be the newest: a
   * checkout behind the branch's tip for the folder (a re-run, an old ref) fails, naming both commits,
   * unless `salvage-ref` names the salvage to use on purpose.
   */
  async load(ctx) {
    const folder = toPosix((0, import_node_path2.relative)(ctx.workspace, ctx.domainDir));
    const at = this.opts.salvageRef ? await this.checkoutSalvageRef(ctx, this.opts.salvageRef) : await this.newest(ctx);
    const found = (0, import_node_fs2.existsSync)(manifestPath(ctx.domainDir));
    if (!found) return { found, outputs: {}, summary: `no committed copy in ${folder}` };
    const outputs = at ? { "salvage-commit": at.commit, "salvage-date": at.date } : {};
    const from = at ? ` from commit ${commitLabel(at)}` : "";
    const why = this.opts.salvageRef ? `, as \`salvage-ref: ${this.opts.salvageRef}\` asks` : "";
    return { found, outputs, summary: `using the committed copy in ${folder}${from}${why}` };
  }
  /** The checkout's commit, once the branch's tip on origin is known not to hold a newer salvage. */
  async newest(ctx) {
    const repo = await openRepo(ctx.workspace).catch(() => null);
    if (!repo?.head) return null;
    const path = repoPath(repo.top, ctx.workspace, ctx.domainDir);
    const head = await folderAt(repo.git, repo.head, path);
    if (!(await repo.git.run(["remote"])).split("\n").includes("origin")) return head;
    const branch = await this.resolveBranch(repo).catch((err) => {
      if (!(err instanceof UserError)) throw err;
      ctx.warning(
        `cannot tell whether the checkout holds the newest salvage of ${path}: ${err.message}. Restoring the checkout's, commit ${commitLabel(head)}`
      );
      return null;
    });
    if (branch === null) return head;
    const tipSha = await fetchTip(repo.git, branch).catch(
      asUserError(
        `could not fetch ${branch} from origin to make sure the checkout holds the newest salvage (set \`salvage-ref: ${head.commit.slice(0, 7)}\` to restore the checkout's)`
      )
    );
    if (tipSha === null) return head;
    const tip = await folderAt(repo.git, tipSha, path);
    if (await isBehind(repo.git, head, tip, "by-date")) {
      if (await this.workspaceTree(repo.git, path) === tip.tree) return tip;
      throw new UserError(
        `store: commit: the checkout (${commitLabel(head)}) is behind ${branch} on origin (${commitLabel(tip)}) for ${path}: the tip holds a newer salvage, and a restore from here would put back the older one. Check out the branch's tip (actions/checkout with \`ref: \${{ github.ref }}\`), or set \`salvage-ref: ${head.commit.slice(0, 7)}\` to restore the older salvage on purpose`
      );
    }
    return head;
  }
  /** The tree of the folder as the workspace holds it (not as HEAD does). */
  async workspaceTree(git, path) {
    if (!(0, import_node_fs2.existsSync)((0, import_node_path2.join)(git.cwd, path))) return null;
    const tmp = (0, import_node_fs2.mkdtempSync)((0, import_node_path2.join)(tempRoot(), "remote-files-commit-"));
    try {
      return await snapshotTree(git, path, (0, import_node_path2.join)(tmp, "index"));
    } finally {
      (0, import_node_fs2.rmSync)(tmp, { recursive: true, force: true });
    }
  }
  /** `salvage-ref`'s folder in the workspace, fetched from origin when the checkout does not have it. */
  async checkoutSalvageRef(ctx, ref) {
    const repo = await openRepo(ctx.workspace);
    const path = repoPath(repo.top, ctx.workspace, ctx.domainDir);
    const isCommitId = /^[0-9a-f]{7,40}$/.test(ref);
    let sha = isCommitId ? await repo.git.revParse(`${ref}^{commit}`) : null;
    if (sha === null && (await repo.git.run(["remote"])).split("\n").includes("origin")) {
      const fetched = await repo.git.run(["fetch", "-q", "--no-tags", "origin", ref]).then(
        () => true,
        () => false
      );
      if (fetched) sha = await repo.git.revParse("FETCH_HEAD^{commit}");
    }
    sha ??= await repo.git.revParse(`${ref}^{commit}`);
    if (sha === null) {
      throw new UserError(
        `input \`salvage-ref\`: "${ref}" names no commit here or on origin; give a commit id (the \`commit-sha\` output of the backup), a branch or a tag`
      );
    }
    const at = await folderAt(repo.git, sha, path);
    if (at.tree === null)
      throw new UserError(
        `input \`salvage-ref\`: commit ${commitLabel(at)} holds no ${path}: nothing to restore from it`
      );
    await checkoutFolder(repo.git, path, ctx.domainDir, at);
    return at;
  }
  async resolveBranch(repo) {
    const env = this.opts.env ?? process.env;
    let branch = this.opts.branch.replace(/^refs\/heads\//, "");
    if (!branch && repo.headRef?.startsWith("refs/heads/")) branch = repo.headRef.slice("refs/heads/".length);
    if (!branch)
      branch = env.GITHUB_HEAD_REF || (env.GITHUB_REF?.startsWith("refs/heads/") ? env.GITHUB_REF_NAME || env.GITHUB_REF.slice("refs/heads/".length) : "");
    if (!branch) {
      throw new UserError(
        `store: commit: the checkout is detached and the workflow's ref${env.GITHUB_REF ? ` (${env.GITHUB_REF})` : ""} is not a branch: set \`commit-branch\` to the branch to commit to`
      );
    }
    try {
      await repo.git.run(["check-ref-format", `refs/heads/${branch}`]);
    } catch (err) {
      if (err instanceof GitError)
        throw new UserError(`store: commit: "${branch}" is not a valid branch name (\`commit-branch\`)`);
      throw err;
    }
    return branch;
  }
  async commitTree(git, domain, parent, tree) {
    const message = this.opts.message || `remote-files: salvage of ${domain} [skip ci]`;
    const out = await git.run(["commit-tree", tree, ...parent ? ["-p", parent] : [], "-m", message], {
      config: [`user.name=${this.opts.userName || BOT_NAME}`, `user.email=${this.opts.userEmail || BOT_EMAIL}`]
    });
    return out.trim();
  }
};
async function pushConverging(git, ctx, branch, path, snapshot, index, first, attempts, commit, refuseChanged) {
  let sha = first;
  for (let attempt = 1; ; attempt++) {
    try {
      await git.run(["push", "-q", "origin", `${sha}:refs/heads/${branch}`]);
      return { sha, attempt, alreadyThere: false };
    } catch (err) {
      if (!(err instanceof GitError)) throw err;
      if (attempt >= attempts || cannotSucceed(err.detail)) {
        const tries = attempt < attempts ? " (not retried: the remote is missing or refuses us)" : ` after ${attempts} attempt${attempts === 1 ? "" : "s"}`;
        throw new UserError(`store: commit could not push ${path} to ${branch}${tries}: ${err.detail}`);
      }
      ctx.info(
        `Push to ${branch} failed (attempt ${attempt} of ${attempts}), re-applying ${path} on the branch's tip: ${err.detail}`
      );
    }
    await (0, import_promises.setTimeout)(backoffMs(attempt));
    let tip;
    try {
      tip = await fetchTip(git, branch);
    } catch (err) {
      if (!(err instanceof GitError)) throw err;
      continue;
    }
    if (tip === null) continue;
    const tree = await treeWith(git, tip, path, snapshot, index);
    if (tree === (await git.run(["rev-parse", `${tip}^{tree}`])).trim()) {
      return { sha: tip, attempt, alreadyThere: true };
    }
    await refuseChanged(tip);
    sha = await commit(tip, tree);
  }
}
function cannotSucceed(detail) {
  return /does not appear to be a git repository|repository .*not found|Authentication failed|could not read (Username|Password)|Permission to \S+ denied|returned error: 40[134]|protected branch|GH006|GH013|pre-receive hook declined|No such remote/i.test(
    detail
  );
}
function backoffMs(attempt) {
  return (0, import_node_crypto2.randomInt)(200, 1e3) * Math.min(2 ** (attempt - 1), 4);
}
async function snapshotTree(git, path, index) {
  (0, import_node_fs2.rmSync)(index, { force: true });
  const env = { GIT_INDEX_FILE: index };
  await git.run(["add", "-A", "-f", "--", path], { env });
  const tree = (await git.run(["write-tree"], { env })).trim();
  return git.revParse(`${tree}:${path}`);
}
async function treeWith(git, base, path, snapshot, index) {
  (0, import_node_fs2.rmSync)(index, { force: true });
  const env = { GIT_INDEX_FILE: index };
  if (base !== null) {
    await git.run(["read-tree", base], { env });
    await git.run(["rm", "-r", "-q", "-f", "--cached", "--ignore-unmatch", "--", path], { env });
  }
  if (snapshot !== null) await git.run(["read-tree", `--prefix=${path}/`, snapshot], { env });
  return (await git.run(["write-tree"], { env })).trim();
}
async function stageFolder(git, path, ctx) {
  try {
    await git.run(["add", "-A", "-f", "--", path]);
  } catch (err) {
    if (!(err instanceof GitError)) throw err;
    ctx.warning(`committed ${path}, but could not stage it in the checkout's index: ${err.detail}`);
  }
}
async function openRepo(workspace) {
  let top;
  try {
    top = (await new Git(workspace).run(["rev-parse", "--show-toplevel"])).trim();
  } catch (err) {
    if (err instanceof GitError)
      throw new UserError(`store: commit needs a git checkout in the workspace (actions/checkout): ${err.detail}`);
    throw err;
  }
  const git = new Git(top);
  const url = await git.run(["remote", "get-url", "origin"]).catch(() => "");
  if (url.trim()) git.hide(url.trim());
  const headRef = await git.orNull(["symbolic-ref", "-q", "HEAD"]);
  return { top, git, headRef, head: await git.revParse("HEAD^{commit}") };
}
function repoPath(top, workspace, domainDir) {
  const rel = (0, import_node_path2.relative)((0, import_node_fs2.realpathSync)(top), (0, import_node_path2.join)((0, import_node_fs2.realpathSync)(workspace), (0, import_node_path2.relative)(workspace, domainDir)));
  if (rel === "" || rel.startsWith("..") || (0, import_node_path2.isAbsolute)(rel)) {
    throw new UserError(`store: commit: the data folder ${domainDir} is not inside the repository at ${top}`);
  }
  return toPosix(rel);
}
function toPosix(p) {
  return import_node_path2.sep === "/" ? p : p.split(import_node_path2.sep).join("/");
}
function asUserError(what) {
  return (err) => {
    if (err instanceof GitError) throw new UserError(`store: commit ${what}: ${err.detail}`);
    throw err;
  };
}
export {
  CommitStore,
  cannotSucceed,
  checkCommitSizes
};
