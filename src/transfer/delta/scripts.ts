/**
 * What the delta transfer runs on the server, with tools a server has: perl with its core Digest::SHA,
 * else python3's hashlib, else coreutils (`split --filter`, `sha1sum`, `dd`). Nothing is installed; a
 * server with none of them gets `T none` and its changed files move whole.
 *
 * Paths come NUL-separated on stdin, never in the script; the programs come as arguments ($1, $2, …),
 * so they may hold any quote. Answers name no path: they follow the order of the request.
 */

import { EXIT_ON_SIGNALS } from '../shell.js';

// Block size: the smallest power of two from 4 KiB that cuts the file into at most 2^18 blocks (see
// plan.ts). The coreutils fallback pays a process per block, so it cuts into at most 512, of 64 KiB or more.

/**
 * Per request (a path, then `oldsize oldsha256` of the stored copy, `0 -` when unknown): `X` (not a
 * readable regular file); or, when the file grew and its first `oldsize` bytes have that SHA-256 (an
 * appended mailbox or log), `A size mtime codec`, the new tail as `D length` pieces (compressed with
 * `codec` as one stream: zstd, gzip or none), `E`; or else `F size mtime blocksize count` and the
 * blocks' digests (SHA-1's first 8 bytes each). Then `S sha256 size mtime`, the size and mtime read again
 * after the last byte. The whole file's SHA-256 comes from `openssl dgst` (SHA-NI: a third of
 * sha256sum's CPU here) or `sha256sum`, run beside the block loop (on the other core), else from
 * Digest::SHA; a file none of them could hash gets a SHA-256 of zeros, which no file put together
 * matches (fetched whole). The tail's codec is the script's first argument (empty: none).
 */
const PERL_DIGESTS = `use strict;
BEGIN { eval { require Digest::SHA; 1 } or exit 97 }
my $z = shift(@ARGV) // "";
my %has;
for my $t ("openssl", "sha256sum", "head", "tail", $z) { $has{$t} = grep { -x "$_/$t" } split /:/, ($ENV{PATH} // "") }
$z = "" unless ($z eq "zstd" || $z eq "gzip") && $has{$z} && $has{tail} && $has{head};
my $zcmd = $z eq "zstd" ? "zstd -q -1 -c" : "gzip -1 -c";
sub hexsum { my ($pipe) = @_; local $/ = "\\n"; my $l = <$pipe>; close $pipe; return defined $l && $l =~ /^\\\\?([0-9a-f]{64})/ ? $1 : "" }
sub summer { return $has{openssl} ? "openssl dgst -sha256 -r" : $has{sha256sum} ? "sha256sum" : "" }
binmode STDIN; binmode STDOUT;
$| = 1;
$/ = "\\0";
print "T perl\\n";
while (defined(my $p = <STDIN>)) {
  chomp $p;
  my $was = <STDIN>;
  last unless defined $was;
  chomp $was;
  my ($osize, $osha) = split / /, $was;
  my $fh;
  if (!open($fh, "<:raw", $p) || !-f $fh) { print "X\\n"; next }
  my ($size, $mtime) = (stat $fh)[7, 9];
  my ($pipe, $sha);
  if (summer()) { open($pipe, "-|", "sh", "-c", summer() . ' < "$1"', "sh", $p) }
  else { $sha = Digest::SHA->new(256) }
  my $appended = 0;
  if (defined $osha && $osha =~ /^[0-9a-f]{64}$/ && $osize =~ /^[0-9]+$/ && $osize > 0 && $size > $osize) {
    my $pre = "";
    if (summer() && $has{head} && open(my $pp, "-|", "sh", "-c", 'head -c "$1" < "$2" | ' . summer(), "sh", $osize, $p)) { $pre = hexsum($pp) }
    else {
      my $d = Digest::SHA->new(256); my $left = $osize;
      while ($left > 0) { my $n = read($fh, my $buf, $left < 1048576 ? $left : 1048576); last unless $n; $d->add($buf); $left -= $n }
      $pre = $left == 0 ? $d->hexdigest : "";
    }
    $appended = $pre eq $osha;
  }
  if ($appended) {
    my $len = $size - $osize;
    print "A $size $mtime ", ($z || "none"), "\\n";
    my $t;
    if ($z && open($t, "-|", "sh", "-c", 'tail -c +"$1" < "$2" | head -c "$3" | ' . $zcmd, "sh", $osize + 1, $p, $len)) {
      binmode $t;
      while (my $n = read($t, my $buf, 262144)) { print "D $n\\n", $buf }
      close $t;
    } else {
      seek($fh, $osize, 0);
      while ($len > 0) { my $n = read($fh, my $buf, $len < 1048576 ? $len : 1048576); last unless $n; print "D $n\\n", $buf; $len -= $n }
    }
    print "E\\n";
    if ($sha) { seek($fh, 0, 0); while (read($fh, my $buf, 1048576)) { $sha->add($buf) } }
  } else {
    my $bs = 4096; $bs *= 2 while $bs * 262144 < $size;
    my $n = int(($size + $bs - 1) / $bs);
    print "F $size $mtime $bs $n\\n";
    seek($fh, 0, 0);
    my $out = "";
    for (my $i = 0; $i < $n; $i++) {
      read($fh, my $buf, $bs);
      $buf = "" unless defined $buf;
      $sha->add($buf) if $sha;
      $out .= substr(Digest::SHA::sha1($buf), 0, 8);
      if (length($out) >= 8192) { print $out; $out = "" }
    }
    print $out;
  }
  close $fh;
  my $sum = $sha ? $sha->hexdigest : $pipe ? hexsum($pipe) : "";
  $sum = "0" x 64 if $sum eq "";
  my @a = stat $p;
  print "S $sum ", (@a ? "$a[7] $a[9]" : "-1 -1"), "\\n";
}`;

const PY_DIGESTS = `import hashlib, os, stat, sys
try:
    hashlib.sha1(b"", usedforsecurity=False)
    sha1 = lambda b: hashlib.sha1(b, usedforsecurity=False)
except Exception:
    try:
        hashlib.sha1(b"")
        sha1 = hashlib.sha1
    except Exception:
        sys.exit(97)
out = sys.stdout.buffer
out.write(b"T python3\\n")
data = sys.stdin.buffer.read().split(b"\\0")
for k in range(0, len(data) - 1, 2):
    p = data[k]
    was = data[k + 1].split(b" ")
    try:
        f = open(p, "rb")
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise OSError()
    except OSError:
        out.write(b"X\\n")
        continue
    size = st.st_size
    mtime = st.st_mtime_ns // 1000000000
    sha = hashlib.sha256()
    appended = False
    if len(was) == 2 and was[0].isdigit() and 0 < int(was[0]) < size and len(was[1]) == 64:
        left = int(was[0])
        while left > 0:
            b = f.read(min(left, 1 << 20))
            if not b:
                break
            sha.update(b)
            left -= len(b)
        appended = left == 0 and sha.hexdigest().encode() == was[1]
        if not appended:
            f.seek(0)
            sha = hashlib.sha256()
    if appended:
        out.write(b"A %d %d none\\n" % (size, mtime))
        left = size - int(was[0])
        while left > 0:
            b = f.read(min(left, 1 << 20))
            if not b:
                break
            sha.update(b)
            out.write(b"D %d\\n" % len(b))
            out.write(b)
            left -= len(b)
        out.write(b"E\\n")
    else:
        bs = 4096
        while bs * 262144 < size:
            bs *= 2
        n = (size + bs - 1) // bs
        out.write(b"F %d %d %d %d\\n" % (size, mtime, bs, n))
        parts = []
        for i in range(n):
            b = f.read(bs)
            sha.update(b)
            parts.append(sha1(b).digest()[:8])
            if len(parts) >= 1024:
                out.write(b"".join(parts))
                out.flush()
                parts = []
        out.write(b"".join(parts))
    f.close()
    try:
        a = os.stat(p)
        after = b"%d %d" % (a.st_size, a.st_mtime_ns // 1000000000)
    except OSError:
        after = b"-1 -1"
    out.write(b"S " + sha.hexdigest().encode() + b" " + after + b"\\n")
out.flush()`;

/**
 * A path and its stored copy's size and SHA-256 per pair of arguments (never an appended answer: a
 * shell cannot compare a prefix cheaply); digests as 16 hex digits per line (a shell cannot print raw
 * bytes portably).
 */
const SH_DIGESTS = `while [ $# -ge 2 ]; do
  p=$1; shift 2
  if [ ! -f "$p" ] || [ ! -r "$p" ]; then echo X; continue; fi
  st=$(stat -L -c '%s %Y' -- "$p") || { echo X; continue; }
  size=\${st% *}; mtime=\${st#* }
  bs=65536; while [ $((bs * 512)) -lt "$size" ]; do bs=$((bs * 2)); done
  n=$(( (size + bs - 1) / bs ))
  d=$(split -b "$bs" --filter='sha1sum | cut -c1-16' -- "$p" 2>/dev/null)
  printf 'F %s %s %s %s\\n' "$size" "$mtime" "$bs" "$n"
  { [ -z "$d" ] || printf '%s\\n' "$d"; i=0; while [ $i -lt "$n" ]; do echo 0000000000000000; i=$((i + 1)); done; } | head -n "$n"
  s=$(sha256sum < "$p" | cut -c1-64)
  st=$(stat -L -c '%s %Y' -- "$p" 2>/dev/null) || st='-1 -1'
  printf 'S %s %s\\n' "$s" "$st"
done`;

/** The marker a test's hostile wrapper (and a reader of the server's logs) can tell these commands by. */
export const DIGESTS_MARK = 'remote-files delta digests';
export const BLOCKS_MARK = 'remote-files delta blocks';

/**
 * Digests of the NUL-separated requests on stdin, by the first tool the server has (see above); $1 is
 * the codec for an appended tail (zstd, gzip or empty).
 */
export const DIGESTS_SCRIPT = `# ${DIGESTS_MARK}
LC_ALL=C; export LC_ALL
z=$1; shift
if command -v perl >/dev/null 2>&1; then perl -e "$1" "$z"; rc=$?; [ $rc = 97 ] || exit $rc; fi
if command -v python3 >/dev/null 2>&1; then python3 -c "$2"; rc=$?; [ $rc = 97 ] || exit $rc; fi
if command -v sha1sum >/dev/null 2>&1 && command -v sha256sum >/dev/null 2>&1 && command -v stat >/dev/null 2>&1 &&
  split --help 2>/dev/null | grep -q -e --filter; then
  printf 'T coreutils\\n'
  exec xargs -0 -r -n 2 sh -c "$3" sh
fi
printf 'T none\\n'`;

export const DIGESTS_ARGS = [PERL_DIGESTS, PY_DIGESTS, SH_DIGESTS];

/**
 * Per request (path, then `blocksize first+count …`, NUL-separated on stdin, read one by one as the
 * runner finds changed blocks, several per file): the blocks' bytes as
 * `D length` lines each followed by that many bytes, then `E`. Reading stops at the end of the file (a
 * file that shrank meanwhile: the runner finds fewer bytes than it asked for).
 */
const PERL_BLOCKS = `use strict;
binmode STDIN; binmode STDOUT;
$/ = "\\0";
while (defined(my $p = <STDIN>)) {
  chomp $p;
  my $spec = <STDIN>;
  last unless defined $spec;
  chomp $spec;
  my ($bs, @runs) = split / /, $spec;
  if (open(my $fh, "<:raw", $p)) {
    RUN: for my $r (@runs) {
      my ($i, $c) = split /\\+/, $r;
      seek($fh, $i * $bs, 0) or last;
      my $left = $c * $bs;
      while ($left > 0) {
        my $got = read($fh, my $buf, $left < 1048576 ? $left : 1048576);
        last RUN unless $got;
        print "D $got\\n", $buf;
        $left -= $got;
      }
    }
    close $fh;
  }
  print "E\\n";
}`;

const PY_BLOCKS = `import os, sys
out = sys.stdout.buffer
def fields():
    pending = b""
    while True:
        chunk = os.read(0, 65536)
        if not chunk:
            return
        pending += chunk
        *done, pending = pending.split(b"\\0")
        yield from done
it = fields()
for path in it:
    spec = next(it, None)
    if spec is None:
        break
    parts = spec.split(b" ")
    bs = int(parts[0])
    try:
        f = open(path, "rb", buffering=0)
    except OSError:
        f = None
    if f is not None:
        with f:
            for r in parts[1:]:
                i, c = (int(x) for x in r.split(b"+"))
                f.seek(i * bs)
                left = c * bs
                while left > 0:
                    b = f.read(min(left, 1 << 20))
                    if not b:
                        break
                    out.write(b"D %d\\n" % len(b))
                    out.write(b)
                    left -= len(b)
                if left > 0:
                    break
    out.write(b"E\\n")
    out.flush()
out.flush()`;

/** One request per call ($1 path, $2 spec): each piece staged by dd in a temp file, for its length. */
const SH_BLOCKS = `p=$1; set -- $2; bs=$1; shift
t=$(mktemp) || exit 1
trap 'rm -f -- "$t"' EXIT
${EXIT_ON_SIGNALS}
for r do
  i=\${r%+*}; c=\${r#*+}
  dd if="$p" of="$t" bs="$bs" skip="$i" count="$c" 2>/dev/null || break
  n=$(wc -c < "$t"); [ "$n" -gt 0 ] || break
  printf 'D %s\\n' "$n"; cat "$t"
  [ "$n" -eq $((c * bs)) ] || break
done
printf 'E\\n'`;

/**
 * The blocks asked for on stdin, read by the tool that computed the digests ($1), through the wire's
 * codec ($2: zstd, gzip or empty), exiting with the reader's status.
 */
export const BLOCKS_SCRIPT = `# ${BLOCKS_MARK}
LC_ALL=C; export LC_ALL
tool=$1; z=$2; shift 2
case $tool in
  perl) set -- perl -e "$1";;
  python3) set -- python3 -c "$2";;
  *) set -- xargs -0 -r -n 2 sh -c "$3" sh;;
esac
case $z in zstd) z="zstd -q -1 -c";; gzip) z="gzip -1 -c";; *) exec "$@";; esac
exec 4>&1
rc=$( { { "$@"; echo $? >&3; } | $z >&4; } 3>&1 )
exit \${rc:-2}`;

export const BLOCKS_ARGS = [PERL_BLOCKS, PY_BLOCKS, SH_BLOCKS];
