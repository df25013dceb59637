/**
 * Evaluates recipe hooks with the runner's perl: one process per run that compiles every module (so a
 * module that does not compile is reported even when the static reader could read it) and calls the
 * hooks it is asked for, answering in JSON lines.
 */
import { spawn } from 'node:child_process';
import { RecipeError } from '../../errors.js';
import type { PerlValue } from './static.js';

export interface PerlJobModule {
  /** The `require` name: `Provisioner/Recipe/Ubuntu/Redis.pm`. */
  key: string;
  abs: string;
  /** Shown in Perl's messages (`#line`), and in ours. */
  rel: string;
  /** The class hooks are called on. */
  pkg: string;
  hooks: string[];
}

export interface PerlJob {
  modules: PerlJobModule[];
  /** Folders holding `Provisioner/Recipe/...`, searched before the installed modules. */
  libs: Array<{ abs: string; rel: string }>;
  /** Arguments after the invocant, per hook. */
  args: Record<string, string[]>;
}

export type PerlAnswer = { kind: 'absent' } | { kind: 'list'; values: PerlValue[] } | { kind: 'died'; message: string };

type Wire = { s: string } | { n: string } | { u: 1 } | { h: Array<[string, Wire]> } | { r: string };

type PerlEvent =
  | { loading: number }
  | { compile_error: number; message: string }
  | { compiled: 1 }
  | { call: number; hook: string }
  | { result: number; hook: string; absent?: true; values?: Wire[]; died?: string }
  | { done: 1 };

// The driver. Kept free of `${` and backticks: it lives in a template literal.
const DRIVER = String.raw`
use strict; use warnings; use B (); use JSON::PP (); use version ();
binmode STDIN;
my $job = JSON::PP->new->decode(do { local $/; <STDIN> });
# Module code may print; keep our channel to ourselves.
open(my $out, '>&', \*STDOUT) or die "dup stdout: $!";
binmode $out; $out->autoflush(1);
open(STDOUT, '>&', \*STDERR) or die "redirect stdout: $!";
my $json = JSON::PP->new->canonical;
sub emit { print {$out} $json->encode($_[0]), "\n" }
sub bytes_of { my ($s) = @_; utf8::encode($s) if utf8::is_utf8($s); return $s }

# A "use VERSION" newer than this perl would die; ask for this perl's own bundle instead, plus the
# newer bundle's strictness, warnings and features as far as this perl has them.
sub modern_use {
  my ($v) = @_;
  my $want = eval { version->parse($v) } or return;
  return if $want <= $^V;
  require feature;
  my ($minor) = sprintf('%vd', $^V) =~ /^5\.(\d+)/;
  my @features = grep { exists $feature::feature{$_} } (
    $want >= version->parse('v5.36') ? qw(signatures isa) : (),
    $want >= version->parse('v5.38') ? 'module_true' : (),
    $want >= version->parse('v5.40') ? 'try' : ());
  my @quiet = grep { exists $warnings::Offsets{$_} } map { "experimental::$_" } @features;
  my $line = "use v5.$minor;";
  $line .= ' use warnings;' if $want >= version->parse('v5.35');
  $line .= " use feature qw(@features);" if @features;
  $line .= " no warnings qw(@quiet);" if @quiet;
  my $needs_true = $want >= version->parse('v5.38') && !exists $feature::feature{module_true};
  return ($line, $needs_true);
}

sub source_fh { my ($text) = @_; open(my $fh, '<', \$text) or die "source: $!"; return $fh }

sub read_module {
  my ($abs, $shown) = @_;
  open(my $fh, '<:raw', $abs) or die "Can't read $shown: $!\n";
  my $src = do { local $/; <$fh> };
  my $needs_true = 0;
  # Same line, so Perl's line numbers stay the file's.
  $src =~ s{(^|;)([^\S\n]*)use[^\S\n]+(v?5(?:\.[\d_]+)*)[^\S\n]*;}{
    my ($line, $t) = modern_use($3); $needs_true ||= $t; $1 . $2 . ($line // "use $3;")
  }gme;
  if ($needs_true) { $src =~ s/^(?=__(?:END|DATA)__\b)/;1;\n/m or $src .= "\n;1;\n" }
  (my $name = $shown) =~ tr/"\n/'_/;
  return source_fh(qq{#line 1 "$name"\n$src});
}

# Missing modules (and the framework's base class) become stubs: importing a name defines it as a
# sub returning an empty list in the importer's package.
sub stub_import {
  my $caller = caller;
  for my $name (@_[1 .. $#_]) {
    next if ref $name || !defined $name || $name !~ /\A[A-Za-z_]\w*\z/;
    no strict 'refs';
    *{"$caller\::$name"} = sub { return } unless defined &{"$caller\::$name"};
  }
}
sub stub {
  my ($key) = @_;
  (my $pkg = $key) =~ s{/}{::}g;
  $pkg =~ s/\.pm\z//;
  no strict 'refs';
  *{"$pkg\::import"} = \&stub_import;
  return source_fh("1;\n");
}

my %given = map { ($_->{key} => $_) } @{ $job->{modules} };
unshift @INC, sub {
  my (undef, $key) = @_;
  return stub($key) if $key eq 'Provisioner/Recipe.pm';
  return read_module($given{$key}{abs}, $given{$key}{rel}) if $given{$key};
  for my $lib (@{ $job->{libs} }) {
    return read_module("$lib->{abs}/$key", "$lib->{rel}/$key") if -f "$lib->{abs}/$key";
  }
  return;
};
push @INC, sub { my (undef, $key) = @_; return $key =~ /\.pm\z/ ? stub($key) : () };

sub enc {
  my ($v) = @_;
  return { u => 1 } unless defined $v;
  if (my $class = ref $v) {
    return { r => $class } unless $class eq 'HASH';
    return { h => [ map { [ bytes_of($_), enc($v->{$_}) ] } sort keys %$v ] };
  }
  # A number Perl never used as a string is a number (a mode written 0750); JSON::PP's own rule.
  my $flags = B::svref_2object(\$v)->FLAGS;
  my $numeric = ($flags & (B::SVp_IOK | B::SVp_NOK)) && !($flags & B::SVp_POK);
  return { ($numeric ? 'n' : 's') => bytes_of("$v") };
}

sub call_hook {
  my ($pkg, $hook) = @_;
  return { absent => JSON::PP::true } unless $pkg->can($hook);
  my @r;
  my $ok = eval {
    # An undefined value in a string being built is an error, not an empty string (as in the static reader).
    local $^W = 1;
    local $SIG{__WARN__} = sub {
      die $_[0] if $_[0] =~ /^Use of uninitialized value.* in (?:concatenation \(\.\) or string|string|join or string|sprintf) at /;
      print STDERR $_[0];
    };
    @r = $pkg->$hook(@{ $job->{args}{$hook} });
    1;
  };
  return { died => bytes_of("$@") } unless $ok;
  return { values => [ map { enc($_) } @r ] };
}

my @modules = @{ $job->{modules} };
for my $i (0 .. $#modules) {
  emit({ loading => $i });
  next if eval { require $modules[$i]{key}; 1 };
  emit({ compile_error => $i, message => bytes_of("$@") });
  exit 0;
}
emit({ compiled => 1 });
for my $i (0 .. $#modules) {
  for my $hook (@{ $modules[$i]{hooks} }) {
    emit({ call => $i, hook => $hook });
    emit({ result => $i, hook => $hook, %{ call_hook($modules[$i]{pkg}, $hook) } });
  }
}
emit({ done => 1 });
`;

/**
 * Runs the job; answers per module, by hook. Throws RecipeError for a module that does not compile,
 * and for a perl that dies, exits or runs longer than `timeoutMs` (naming what it was doing).
 */
export async function runPerl(perl: string, job: PerlJob, timeoutMs = 30_000): Promise<Array<Map<string, PerlAnswer>>> {
  const { stdout, stderr, timedOut, spawnError } = await spawnDriver(perl, job, timeoutMs);
  const first = job.modules[0]?.rel ?? 'perl';
  if (spawnError) throw new RecipeError(first, undefined, `cannot run perl (${perl}): ${spawnError.message}`);
  const answers = job.modules.map(() => new Map<string, PerlAnswer>());
  let doing = 'starting';
  let doingFile = first;
  for (const event of parseEvents(stdout)) {
    if ('loading' in event) [doing, doingFile] = ['loading the module', job.modules[event.loading]!.rel];
    else if ('compile_error' in event) throw compileError(job.modules[event.compile_error]!.rel, event.message);
    else if ('call' in event) [doing, doingFile] = [`calling ${event.hook}`, job.modules[event.call]!.rel];
    else if ('result' in event) answers[event.result]!.set(event.hook, toAnswer(event));
    else if ('done' in event) return answers;
  }
  if (timedOut) throw new RecipeError(doingFile, undefined, `perl was stopped after ${timeoutMs / 1000} s ${doing}`);
  throw new RecipeError(doingFile, undefined, `perl stopped while ${doing}: ${lastLines(stderr) || 'no message'}`);
}

function spawnDriver(
  perl: string,
  job: PerlJob,
  timeoutMs: number,
): Promise<{ stdout: string; stderr: string; timedOut: boolean; spawnError: Error | null }> {
  return new Promise((resolve) => {
    const child = spawn(perl, ['-e', DRIVER], { stdio: ['pipe', 'pipe', 'pipe'], env: perlEnvironment(process.env) });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timedOut = false;
    let spawnError: Error | null = null;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    // A perl that exits before reading its input closes the pipe; what it printed says why.
    child.stdin.on('error', () => {});
    child.on('error', (e) => (spawnError = e));
    child.on('close', () => {
      clearTimeout(timer);
      resolve({
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
        timedOut,
        spawnError,
      });
    });
    child.stdin.end(JSON.stringify(job));
  });
}

/** Complete JSON lines; a line cut off by a kill is dropped. */
function parseEvents(stdout: string): PerlEvent[] {
  const events: PerlEvent[] = [];
  for (const line of stdout.split('\n')) {
    try {
      if (line) events.push(JSON.parse(line) as PerlEvent);
    } catch {
      break;
    }
  }
  return events;
}

function toAnswer(event: Extract<PerlEvent, { result: number }>): PerlAnswer {
  if (event.absent) return { kind: 'absent' };
  if (event.died !== undefined) return { kind: 'died', message: withoutDriverLocation(event.died) };
  return { kind: 'list', values: (event.values ?? []).map(fromWire) };
}

function fromWire(w: Wire): PerlValue {
  if ('s' in w) return { t: 'str', v: w.s };
  if ('n' in w) return { t: 'num', v: Number(w.n), s: w.n };
  if ('h' in w) return { t: 'hash', pairs: w.h.map(([k, v]) => [k, fromWire(v)]) };
  if ('r' in w) return { t: 'ref', kind: w.r };
  return { t: 'undef' };
}

/** Perl names the driver (`-e`) as where a hook was called or required from: noise to the user. */
function withoutDriverLocation(message: string): string {
  return message
    .split('\n')
    .filter((l) => !/^(Compilation failed in require|BEGIN failed--compilation aborted) at -e line/.test(l))
    .map((l) => l.replace(/ at -e line \d+\.$/, ''))
    .join('\n')
    .trim();
}

function compileError(rel: string, message: string): RecipeError {
  const text = withoutDriverLocation(message);
  return new RecipeError(rel, perlLine(text, rel), `does not compile: ${text}`);
}

/** The line Perl names for `rel` in a message ("... at lib/X.pm line 12."), if any. */
export function perlLine(message: string, rel: string): number | undefined {
  for (const m of message.matchAll(/ at (.+?) line (\d+)\b/g)) if (m[1] === rel) return Number(m[2]);
  return undefined;
}

function lastLines(text: string): string {
  return text.trim().split('\n').slice(-5).join('\n');
}

/**
 * Recipes are the repository's code, run here by perl: the interpreter gets the variables it needs to
 * find itself and its libraries, and nothing else — no INPUT_* (the private key, passwords), no token.
 */
export function perlEnvironment(from: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(from)) {
    if (v !== undefined && /^(PATH|LANG|LANGUAGE|LC_[A-Z]+|TZ|TMPDIR|PERL5LIB|PERLLIB|PERL_LOCAL_LIB_ROOT)$/.test(k))
      env[k] = v;
  }
  return env;
}
