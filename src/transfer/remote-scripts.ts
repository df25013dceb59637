/**
 * The shell the tar transport runs on the server. POSIX sh plus GNU find, tar, coreutils (what every
 * mainstream Linux server has); `transport: auto` probes for them and falls back to SFTP otherwise.
 * Paths travel as arguments (quoted here) or NUL-separated on stdin, never spliced into the script, so
 * names with spaces, quotes or newlines are safe.
 */

/** Quotes one word for POSIX sh. */
export function shQuote(word: string): string {
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

/** `sh -c SCRIPT sh ARGS...`, optionally as root through `sudo -n` (never prompts: fails instead). */
export function shCommand(script: string, args: string[], sudo: boolean): string {
  const words = ['sh', '-c', script, 'sh', ...args].map(shQuote).join(' ');
  return sudo ? `sudo -n ${words}` : words;
}

// One record per path: readable flag, then find's fields; every field ends in NUL. Owner and group
// names are left empty here (find looks each one up per file: 20,000 files took 0.4 s) and come once
// per id at the end, see LIST_SCRIPT.
const FIELDS = '%y\\0%s\\0%T@\\0%m\\0%U\\0%G\\0\\0\\0%P\\0%l\\0';
const IDS = `-fprintf "$i" '%U %G\\n'`;

/**
 * Lists each argument recursively (symlinks not followed). Per argument: `E`, then `M` (missing),
 * `D` (denied) or records. Unreadable folders are listed but pruned, unreadable files flagged, so a
 * denied part never looks like a deletion. Then `N` and, per owner and group id seen, `u` or `g`, the
 * id and its name (empty when the server has none). Without a temp folder the names stay empty.
 */
export const LIST_SCRIPT = `LC_ALL=C; export LC_ALL
if ids=$(mktemp -d 2>/dev/null); then trap 'rm -rf -- "$ids"' EXIT; else ids=; fi
n=0
for p do
  printf 'E\\0'
  n=$((n + 1))
  if [ -n "$ids" ]; then i=$ids/i$n; else i=/dev/null; fi
  if [ -e "$p" ] || [ -L "$p" ]; then
    find "$p" \\( -type d \\( ! -readable -o ! -executable \\) -printf 'U\\0${FIELDS}' ${IDS} -prune \\) \\
      -o \\( ! -type d ! -type l ! -readable -printf 'U\\0${FIELDS}' ${IDS} \\) \\
      -o -printf 'R\\0${FIELDS}' ${IDS}
  elif ls -d -- "$p" 2>&1 | grep -q 'Permission denied'; then
    printf 'D\\0'
  else
    printf 'M\\0'
  fi
done
printf 'N\\0'
[ -n "$ids" ] || exit 0
cat "$ids"/i* 2>/dev/null | sort -u > "$ids/pairs"
for id in $(cut -d ' ' -f 1 "$ids/pairs" | sort -un); do printf 'u\\0%s\\0%s\\0' "$id" "$(getent passwd "$id" | cut -d: -f1)"; done
for id in $(cut -d ' ' -f 2 "$ids/pairs" | sort -un); do printf 'g\\0%s\\0%s\\0' "$id" "$(getent group "$id" | cut -d: -f1)"; done`;

/** SHA-256 of the NUL-separated paths on stdin (unreadable ones are skipped with a message). */
export const CHECKSUM_SCRIPT = `LC_ALL=C; export LC_ALL; xargs -0 -r sha256sum --`;

/**
 * Streams the NUL-separated files on stdin as one tar archive with their absolute names (-P), hard
 * links stored as files, nothing recursed into.
 */
export const FETCH_SCRIPT = `LC_ALL=C; export LC_ALL; exec tar -c -f - -P --hard-dereference --no-recursion --null -T -`;

/** Probe for what the tar transport needs: GNU find and GNU tar. */
export const PROBE_SCRIPT = `find --version 2>/dev/null | head -n 1; tar --version 2>/dev/null | head -n 1; id -u`;

/**
 * Keeps the current content of files about to be replaced: each NUL-separated rel on stdin, below
 * root $2, is hard-linked (or copied) to $1 + its absolute path. $1 starting with ~/ means the home.
 */
export const KEEP_PREVIOUS_SCRIPT = `set -e; LC_ALL=C; export LC_ALL
prev=$1; root=$2
case "$prev" in "~/"*) prev="$HOME/\${prev#\\~/}";; esac
mkdir -p -- "$prev"
printf '%s\\n' "$prev"
xargs -0 -r sh -c 'prev=$1; root=$2; shift 2
for rel do
  if [ -z "$rel" ]; then src=$root; else src=$root/$rel; fi
  dst=$prev$src
  mkdir -p -- "\${dst%/*}"
  ln -- "$src" "$dst" 2>/dev/null || cp -p -- "$src" "$dst"
done' sh "$prev" "$root"`;

/**
 * Receives a tar on stdin and puts it in place atomically per file: it is unpacked into a staging
 * folder beside the destination (same filesystem), then each file is renamed into place (mv -f is
 * rename(2) there). Folders' modes, owners and times are applied last, from a second archive
 * (.rf-dirs.tar) carried inside the first, because moving files into a folder changes its mtime.
 * Where nothing is at the destination yet (or an empty folder: a rebuilt server), the whole staged
 * tree is renamed into place at once instead (mv -T fails rather than nest it, should a folder with
 * contents appear meanwhile); file by file cost a find, xargs and mv per folder.
 * $1 root, $2 root type (file|dir), $3 1 to keep owners (root or sudo).
 */
export const UPLOAD_SCRIPT = `set -e; LC_ALL=C; export LC_ALL
root=$1; kind=$2; owners=$3
parent=\${root%/*}; [ -n "$parent" ] || parent=/
mkdir -p -- "$parent"
stage=$(mktemp -d "$parent/.remote-files-XXXXXX")
trap 'rm -rf -- "$stage"' EXIT
if [ "$owners" = 1 ]; then own=--same-owner; else own=--no-same-owner; fi
tar -x -p $own -f - -C "$stage"
if [ "$kind" = file ]; then
  mv -f -- "$stage/r" "$root"
  exit 0
fi
if { [ ! -e "$root" ] && [ ! -L "$root" ]; } || rmdir -- "$root" 2>/dev/null; then
  mv -T -- "$stage/r" "$root"
else
  mkdir -p -- "$root"
  cd "$stage/r"
  find . -type d -exec sh -c 'for d do [ -d "$0/$d" ] || mkdir -p -- "$0/$d"; done' "$root" {} +
  find . -type d -exec sh -c 'for d do find "$d" -mindepth 1 -maxdepth 1 ! -type d -print0 | xargs -0 -r mv -f -t "$0/$d"; done' "$root" {} +
fi
tar -x -p $own -f "$stage/.rf-dirs.tar" -C "$root"`;
