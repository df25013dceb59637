// A real bare git remote for the commit store's tests, with clones made as actions/checkout makes them.
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { testTempDir } from './temp.js';

const git = (cwd: string, ...args: string[]) => execFileSync('git', ['-C', cwd, ...args], { encoding: 'utf8' }).trim();

export interface GitOrigin {
  /** The bare repository, the remote every clone pushes to. */
  origin: string;
  /** A fresh clone of origin beside it, with `config` (`key=value`) set for the clone command (`git clone -c`). */
  clone: (config?: string[]) => string;
}

/**
 * A bare origin in a test temp folder `<prefix>XXXXXX`, whose branch main holds `files` (name → content:
 * the recipe, attributes) in one commit.
 */
export function gitOrigin(prefix: string, files: Record<string, string>): GitOrigin {
  const base = testTempDir(prefix);
  const origin = join(base, 'origin.git');
  execFileSync('git', ['init', '-q', '--bare', '-b', 'main', origin]);
  let n = 0;
  const clone = (config: string[] = []) => {
    const dir = join(base, `clone-${n++}`);
    execFileSync('git', ['clone', '-q', ...config.flatMap((c) => ['-c', c]), origin, dir], { stdio: 'ignore' });
    return dir;
  };
  const first = clone();
  git(first, 'checkout', '-q', '-b', 'main');
  for (const [name, content] of Object.entries(files)) writeFileSync(join(first, name), content);
  git(first, 'add', '.');
  git(first, '-c', 'user.name=t', '-c', 'user.email=t@t', 'commit', '-q', '-m', 'recipes');
  git(first, 'push', '-q', 'origin', 'main');
  return { origin, clone };
}
