/**
 * The shell the tar transport runs on the server. POSIX sh plus GNU find, tar, coreutils (what every
 * mainstream Linux server has); `transport: auto` probes for them and falls back to SFTP otherwise.
 * Paths travel as arguments (quoted by shCommand, ../shell.ts) or NUL-separated on stdin, never spliced into the script, so
 * names with spaces, quotes or newlines are safe.
 */

import { EXIT_ON_SIGNALS } from '../shell.js';

// One record per path: readable flag, then find's fields; every field ends in NUL. Owner and group
// names are left empty here (find looks each one up per file: 20,000 files took 0.4 s) and come once
// per id at the end, see LIST_SCRIPT. The mtime is %Ts, whole seconds rounded down: %T@ prints a time
// before 1970 as its seconds and nanoseconds side by side (-1.5 s as "-2.5000000000"), which no parser
// can tell from a real -2.5.
const FIELDS = '%y\\0%s\\0%Ts\\0%m\\0%U\\0%G\\0\\0\\0%P\\0%l\\0';
const IDS = `-fprintf "$i" '%U %G\\n'`;

/**
 * Lists each argument recursively (symlinks not followed). Per argument: `E`, then `M` (missing),
 * `D` (denied) or records. Unreadable folders are listed but pruned, unreadable files flagged, so a
 * denied part never looks like a deletion. Then `N` and, per owner and group id seen, `u` or `g`, the
 * id and its name (empty when the server has none). Without a temp folder the names stay empty.
 */
export const LIST_SCRIPT = `LC_ALL=C; export LC_ALL
if ids=$(mktemp -d 2>/dev/null); then trap 'rm -rf -- "$ids"' EXIT; ${EXIT_ON_SIGNALS}; else ids=; fi
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
 * links stored as files, nothing recursed into. With a codec in $1 (zstd or gzip, at level 1: zstd -1
 * moves ~600 MB/s of data that does not compress, ~300 MB/s of text here; -3 saved 4% of P7's bytes
 * but made P8, at 1 Gbit/s, 1.04× rsync instead of 0.84×) the archive goes through it, and the
 * script still exits with tar's status (1: a file changed meanwhile).
 */
export const FETCH_SCRIPT = `LC_ALL=C; export LC_ALL
case $1 in zstd) z="zstd -q -1 -c";; gzip) z="gzip -1 -c";; *) exec tar -c -f - -P --hard-dereference --no-recursion --null -T -;; esac
exec 4>&1
rc=$( { { tar -c -f - -P --hard-dereference --no-recursion --null -T -; echo $? >&3; } | $z >&4; } 3>&1 )
exit \${rc:-2}`;

/**
 * Probe for what the tar transport needs: GNU find and GNU tar; and which compressors there are
 * ("codec NAME" lines). The uid comes last.
 */
export const PROBE_SCRIPT = `find --version 2>/dev/null | head -n 1; tar --version 2>/dev/null | head -n 1; for c in zstd gzip; do command -v $c >/dev/null 2>&1 && echo "codec $c"; done; id -u`;

/**
 * Shell functions of the restore scripts, which run as root with `sudo: true` or a root login: a
 * folder below a destination's root may belong to another account (www-data owns `uploads/`), which
 * can replace it with a link to `/etc/x` at any moment. So nothing below a root is ever followed:
 * - `follow_root` resolves the root itself only while it is a link that the login user (SUDO_UID
 *   under sudo) or root owns, in folders they own (a provisioner pointing /var/lib/mysql at a data
 *   disk, as rsync follows its transfer root); anything else is refused naming the link and its target.
 * - `enter` goes into a folder and checks, after the fact, that the folder the shell is in has the
 *   physical path expected: `cd -P` followed whatever was on the way, so a link swapped in at any
 *   moment before shows as another path and is refused. What follows is done relative to that
 *   folder (the current directory pins it), with names that are never followed (mv -t/-T renames
 *   over a link, `ln` and `cp -P` link or copy the link itself).
 * Plain text without single quotes: it is also embedded in the single-quoted inner scripts.
 */
const FUNCTIONS = `me=\${SUDO_UID:-$(id -u)}
refuse() { printf "remote-files refused: %s\\n" "$*" >&2; exit 3; }
here() { rf_here=$(pwd -P; echo .); [ "\${rf_here%?.}" = "$1" ]; }
enter() { cd -P -- "$1" 2>/dev/null && here "$1" || refuse "$1 is not a real folder on the server (a link, or replaced meanwhile): nothing was written through it"; }
follow_root() {
  hops=0
  while [ -L "$root" ]; do
    hops=$((hops + 1))
    target=$(readlink -- "$root")
    [ "$hops" -le 8 ] || refuse "refusing to restore through $root: too many links ($target)"
    up=$root
    while [ -n "$up" ]; do
      u=$(stat -c %u -- "$up")
      if [ "$u" != 0 ] && [ "$u" != "$me" ]; then
        who=$(stat -c %U -- "$up")
        if [ "$up" = "$root" ]; then what="the link belongs to $who"; else what="$up, a folder above it, belongs to $who"; fi
        refuse "refusing to restore through $root: it is a link to $target and $what; a destination that is a link is followed only when the link and every folder above it belong to root or the login user"
      fi
      up=\${up%/*}
    done
    case $target in /*) root=$target;; *) root=\${root%/*}/$target;; esac
    while [ "$root" != / ] && [ "\${root%/}" != "$root" ]; do root=\${root%/}; done
  done
}`;

/** Sets $parentp (the root's folder, physical) and $rootp (the root's physical path) from $root. */
const ROOT_PATHS = `name=\${root##*/}; parent=\${root%/*}; [ -n "$parent" ] || parent=/
mkdir -p -- "$parent"
cd -P -- "$parent"; parentp=$(pwd -P)
case $parentp in /) rootp=/$name;; *) rootp=$parentp/$name;; esac`;

/**
 * Keeps the current content of files about to be replaced: each NUL-separated rel on stdin, below
 * root $2 (of type $3), is hard-linked (or copied) to $1 + its absolute path. $1 starting with ~/
 * means the home. A file reached only through a link below the root is not kept (it is not the
 * destination's: the restore puts a real folder in that link's place); a link is kept as a link.
 */
export const KEEP_PREVIOUS_SCRIPT = `set -e; LC_ALL=C; export LC_ALL
prev=$1; root=$2; kind=$3; asked=$2
${FUNCTIONS}
case "$prev" in "~/"*) prev="$HOME/\${prev#\\~/}";; esac
mkdir -p -- "$prev"
printf '%s\\n' "$prev"
[ "$kind" != dir ] || follow_root
${ROOT_PATHS}
per_file='prev=$1; rootp=$2; root=$3; shift 3
for rel do
  if [ -z "$rel" ]; then dir=\${rootp%/*}; n=\${rootp##*/}; dst=$prev$root
  else
    case $rel in */*) dir=$rootp/\${rel%/*};; *) dir=$rootp;; esac
    n=\${rel##*/}; dst=$prev$root/$rel
  fi
  [ -n "$dir" ] || dir=/
  if cd -P -- "$dir" 2>/dev/null && h=$(pwd -P; echo .) && [ "\${h%?.}" = "$dir" ]; then
    mkdir -p -- "\${dst%/*}"
    ln -- "$n" "$dst" 2>/dev/null || cp -P -p -- "$n" "$dst"
  fi
done'
xargs -0 -r sh -c "$per_file" sh "$prev" "$rootp" "$asked"`;

/**
 * Receives a tar on stdin and puts it in place atomically per file: it is unpacked into a private
 * staging folder (mktemp -d, 0700) beside the destination (same filesystem), then each file is renamed
 * into place (mv -f is rename(2) there). Where nothing is at the destination yet (or an empty folder:
 * a rebuilt server), the whole staged tree, its folders' metadata set by tar, is renamed into place at
 * once instead (mv -T fails rather than nest it, should a folder with contents appear meanwhile); file
 * by file cost a find, xargs and mv per folder. Otherwise folders' modes, owners and times are applied
 * last, deepest first, because moving files into a folder changes its mtime: a second archive
 * (.rf-dirs.tar) carried inside the first is unpacked into a skeleton of the folders (m/), whose
 * metadata is copied onto each destination folder (chown -h/chmod/touch -h --reference, on ".").
 * $1 root, $2 root type (file|dir|symlink: a link goes only where nothing is), $3 1 to keep owners
 * (root or sudo), $4 the codec the archive is
 * compressed with (zstd or gzip; empty: none).
 *
 * Links below the root are never followed (see FUNCTIONS): the staging folder is pinned by a
 * descriptor (/proc/$$/fd/3), and every destination folder is entered and checked before anything is
 * done in it, relative to it: files are renamed in with mv -t (a link at a file's name is replaced, a
 * folder there makes mv fail), a link where a subfolder goes is removed and a real folder made in its
 * place, as rsync does, and owner, mode and times are set on "." itself. A file root where the server
 * now has a folder is refused. A link swapped in below the root at any moment is thus either replaced
 * or refused; no race is left there. What remains: without /proc, the staging folder is reached by its
 * path, which the owner of the root's parent folder could swap; and the root's parent folders are
 * above the root, so followed (they are the admin's).
 */
export const UPLOAD_SCRIPT = `set -e; LC_ALL=C; export LC_ALL
root=$1; kind=$2; owners=$3
${FUNCTIONS}
[ "$kind" != dir ] || follow_root
${ROOT_PATHS}
stage=$(mktemp -d "$parentp/.remote-files-XXXXXX")
trap 'rm -rf -- "$stage"' EXIT
${EXIT_ON_SIGNALS}
enter "$stage"
exec 3<.
src=/proc/$$/fd/3
[ -d "$src/" ] || src=$stage
if [ "$owners" = 1 ]; then own=--same-owner; else own=--no-same-owner; fi
# tar reads through a pipe of 1 MiB where a working perl can ask Linux for one (F_SETPIPE_SZ, 1031 on
# Linux only; 64 KiB by default):
# while tar creates a file, sshd keeps filling it. With 64 KiB, tar and sshd took turns on a busy
# server, and 2,000 small files took 2.4 s to unpack instead of 1.5 s (bench P4).
wide() { if perl -e 1 2>/dev/null; then perl -e 'fcntl(STDIN, 1031, 1048576) if $^O eq "linux"; exec @ARGV or exit 127' "$@"; else "$@"; fi; }
case $4 in zstd|gzip) $4 -d -c | wide tar -x -p $own -f -;; *) wide tar -x -p $own -f -;; esac
enter "$parentp"
# The staged root must be what the request says: a link staged as a folder root would be entered below.
case $kind in
  dir) [ -d "$src/r" ] && [ ! -L "$src/r" ] || refuse "the archive for $root does not hold a folder: nothing was written";;
  file) [ -f "$src/r" ] && [ ! -L "$src/r" ] || refuse "the archive for $root does not hold a file: nothing was written";;
  symlink) [ -L "$src/r" ] || refuse "the archive for $root does not hold a link: nothing was written";;
  *) refuse "unknown root type $kind";;
esac
if [ "$kind" = symlink ]; then
  # A link may point anywhere on the server: it goes only where nothing is, never entered nor followed.
  if [ -e "$name" ] || [ -L "$name" ]; then refuse "$root is there on the server, and a stored link is put back only where the server has nothing: nothing was written"; fi
  mv -nT -- "$src/r" "$name" || true
  [ ! -L "$src/r" ] || refuse "$root appeared on the server meanwhile, and a stored link is put back only where the server has nothing: nothing was written"
  exit 0
fi
if [ "$kind" = file ]; then
  if [ -d "$name" ] && [ ! -L "$name" ]; then refuse "$root is a folder on the server where the stored copy has a file: nothing was written in it"; fi
  mv -fT -- "$src/r" "$name"
  exit 0
fi
if { [ ! -e "$name" ] && [ ! -L "$name" ]; } || rmdir -- "$name" 2>/dev/null; then
  mv -T -- "$src/r" "$name"
  exit 0
fi
[ -d "$name" ] && [ ! -L "$name" ] || refuse "$root is not a folder on the server: nothing was written"
per_dir='root=$1; src=$2; shift 2; fail=0
${FUNCTIONS}
for d do
  d=\${d#.}; d=\${d#/}
  if [ -n "$d" ]; then
    t=$root/$d
    enter "\${t%/*}"
    n=\${t##*/}
    if [ -L "$n" ]; then rm -f -- "$n"; fi
    [ -d "$n" ] || mkdir -- "$n" || fail=1
  else
    t=$root
  fi
  enter "$t"
  find "$src/$d" -mindepth 1 -maxdepth 1 ! -type d -print0 | xargs -0 -r mv -f -t . -- || fail=1
done
exit $fail'
cd "$src"
mkdir m
tar -x -p $own -f .rf-dirs.tar -C m
cd r
find . -type d -exec sh -c "$per_dir" sh "$rootp" "$src/r" {} +
per_meta='root=$1; src=$2; owners=$3; shift 3; fail=0
${FUNCTIONS}
for d do
  d=\${d#.}; d=\${d#/}
  if [ -n "$d" ]; then t=$root/$d; else t=$root; fi
  enter "$t"
  if [ "$owners" = 1 ]; then chown -h --reference="$src/$d" . || fail=1; fi
  chmod --reference="$src/$d" . || fail=1
  touch -h -r "$src/$d" . || fail=1
done
exit $fail'
cd "$src/m"
find . -depth -type d -exec sh -c "$per_meta" sh "$rootp" "$src/m" "$owners" {} +`;

/**
 * Runs the script $1 with a time limit of $2 seconds, the rest as its $1…: through coreutils'
 * `timeout` where the server has it (exit 124 when it ran out: TERM, then KILL 10 s later), else as
 * it is (this side's backstop then bounds it, see SshSession.exec's limitMs).
 */
export const TIME_LIMIT_SCRIPT = `s=$1; n=$2; shift 2
if command -v timeout >/dev/null 2>&1; then exec timeout -k 10 "$n" sh -c "$s" sh "$@"; fi
exec sh -c "$s" sh "$@"`;

/** Exit status of a command `timeout` stopped. */
export const TIMED_OUT = 124;

/** The first line PREPARE_SCRIPT prints on stdout, before the command's own output. */
export const PREPARE_MARK = 'remote-files prepare:';

/**
 * The newest modification and status-change time below each server path given, one line per path:
 * `m <time> c <time>`, or `-` when the path does not exist. The status-change time catches what a
 * modification time can hide (a file with an mtime in the future, an `mv` of an old file); a deleted
 * file changes its folder's times. Unreadable folders are left out alike on every reading.
 */
const NEWEST = `newest() {
  for p do
    if [ -e "$p" ] || [ -L "$p" ]; then
      LC_ALL=C find "$p" -printf 'm %T@\\nc %C@\\n' 2>/dev/null | LC_ALL=C sort -k1,1 -k2,2n | LC_ALL=C awk '{ last[$1] = $2 } END { print "m " last["m"] " c " last["c"] }'
    else
      echo -
    fi
  done
}`;

/** The paths' newest times now (the reading after a prepare command that failed). */
export const NEWEST_SCRIPT = `${NEWEST}
newest "$@"`;

/**
 * Runs one `remote_prepare` command (`$1`) as before (`sh -c`, its output and exit status its own),
 * right after reading the newest times below the server paths that follow (the recipe's
 * `remote_files`): PREPARE_MARK and one line per path come first on stdout. A command that succeeds
 * needs nothing more (one round trip); one that fails is followed by NEWEST_SCRIPT.
 */
export const PREPARE_SCRIPT = `${NEWEST}
c=$1; shift
printf '${PREPARE_MARK}\\n'
newest "$@"
exec sh -c "$c"`;

const TIMES = /^(-|m [0-9.]+ c [0-9.]+)$/;

/** PREPARE_SCRIPT's answer: the readings before the command and the command's own output (null: no readings). */
export function parsePrepare(output: string, paths: string[]): { before: string[]; output: string } | null {
  const lines = output.split('\n');
  if (lines[0] !== PREPARE_MARK || lines.length < 1 + paths.length) return null;
  const before = lines.slice(1, 1 + paths.length);
  if (!before.every((l) => TIMES.test(l))) return null;
  return {
    before,
    output: lines
      .slice(1 + paths.length)
      .join('\n')
      .trim(),
  };
}

/** NEWEST_SCRIPT's answer, one reading per path (null: not that). */
export function parseNewest(output: string, paths: string[]): string[] | null {
  const lines = output.trim() === '' ? [] : output.trim().split('\n');
  return lines.length === paths.length && lines.every((l) => TIMES.test(l)) ? lines : null;
}
