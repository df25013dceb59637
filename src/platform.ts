import { UserError } from './errors.js';

/**
 * The systems the action runs on. Linux only: on the runner it writes POSIX modes, owners and symlinks
 * into the data folder, and the cache and artifact stores pack it with GNU tar and zstd; Windows keeps
 * none of the modes, and macOS runners lack GNU tar by default. What it stores checks out everywhere
 * (README "Names and systems"); only the step itself must run on Linux.
 */
export const SUPPORTED_PLATFORMS: readonly NodeJS.Platform[] = ['linux'];

/** Fails at once on a system the action does not support, before anything is read or connected. */
export function assertSupportedPlatform(platform: NodeJS.Platform = process.platform): void {
  if (SUPPORTED_PLATFORMS.includes(platform)) return;
  throw new UserError(
    `remote-files runs on Linux runners only, and this one is ${platform}: run this step with runs-on: ubuntu-latest ` +
      '(or another Linux runner). The data folder it stores can be checked out on Windows and macOS.',
  );
}
