import assert from 'node:assert/strict';
import { test } from 'node:test';
import { evalHook, parsePerlModule, type PerlValue, type StaticOutcome } from '../../src/recipes/perl/static.js';

// Inline modules: two header lines, so the body's first line is line 3 of the module.
const HEADER = 'package P;\nuse strict;\n';
/** What the framework passes after the invocant. */
const ARGS: Record<string, string[]> = {
  remote_files: ['/srv/www', 'example.com'],
  remote_prepare: ['/srv/www', 'example.com'],
  restores: ['install_dir', '/srv/www', 'domain', 'example.com'],
};

function read(body: string, hook = 'remote_files', header = HEADER, args = ARGS[hook] ?? []): StaticOutcome {
  return evalHook(parsePerlModule(header + body), hook, 'P', args);
}

/** Values as plain data: strings, numbers as { n }, undef as null, hashes as [key, value] pairs. */
function plain(v: PerlValue): unknown {
  switch (v.t) {
    case 'str':
      return v.v;
    case 'num':
      return { n: v.v };
    case 'undef':
      return null;
    case 'hash':
      return v.pairs.map(([k, x]) => [k, plain(x)]);
    case 'ref':
      return { ref: v.kind };
  }
}

function values(body: string, hook = 'remote_files', header = HEADER, args = ARGS[hook] ?? []): unknown[] {
  const o = read(body, hook, header, args);
  assert.equal(o.kind, 'list', JSON.stringify(o));
  return (o as Extract<StaticOutcome, { kind: 'list' }>).values.map(plain);
}

function dynamic(body: string, hook = 'remote_files', header = HEADER): { line: number; construct: string } {
  const o = read(body, hook, header);
  assert.equal(o.kind, 'dynamic', JSON.stringify(o));
  const { line, construct } = o as Extract<StaticOutcome, { kind: 'dynamic' }>;
  return { line, construct };
}

function fault(body: string, hook = 'remote_files', header = HEADER): { line: number; detail: string } {
  const o = read(body, hook, header);
  assert.equal(o.kind, 'error', JSON.stringify(o));
  const { line, detail } = o as Extract<StaticOutcome, { kind: 'error' }>;
  return { line, detail };
}

test("single quotes: only \\\\ and \\' are escapes", () => {
  assert.deepEqual(values(String.raw`sub remote_files { ('a\'b', 'c\\d', 'e\nf', '$x @y') }`), [
    "a'b",
    'c\\d',
    'e\\nf',
    '$x @y',
  ]);
});

test('double quotes: Perl escapes, an unknown escape is the character itself', () => {
  assert.deepEqual(
    values(String.raw`sub remote_files { ("\t|\n|\\|\"|\$x|\@y|\x41|\x{263A}|\101|\cA|\e|\N{U+263A}|\d|\o{101}") }`),
    ['\t|\n|\\|"|$x|@y|A|\u263a|A|\x01|\x1b|\u263a|d|A'],
  );
});

test('q, qq and qw with any delimiter: brackets nest, an escaped delimiter is the delimiter', () => {
  const body = String.raw`sub remote_files {
    (q(a(b)c), q[a[b]], q{a{b}}, q<a<b>>, q/a\/b/, q|a\|b|, q!a!, q#a#, q (spaced), qq'$ARGS',
     qq{d={$domain}}, qw/w1 w2/, qw[ w3
       w4 ], qw<w5>)
  }`;
  const header = `${HEADER}my $domain;\nmy $ARGS;\n`;
  // qq'...' interpolates (only m'', qr'', s''' and qx'' do not), so $ARGS (a file lexical) is not followable.
  assert.match(dynamic(body, 'remote_files', header).construct, /\$ARGS, declared outside the hook/);
  const followable = body.replace(`qq'$ARGS',`, '').replace('{$domain}', '{x}');
  assert.deepEqual(values(followable), [
    'a(b)c',
    'a[b]',
    'a{b}',
    'a<b>',
    'a/b',
    'a|b',
    'a',
    'a',
    'spaced',
    'd={x}',
    'w1',
    'w2',
    'w3',
    'w4',
    'w5',
  ]);
});

test('$var and ${var} interpolate; "." and ":" end a name; braces and arrows after ${name} are text', () => {
  const body =
    'sub remote_files {\n  my ($self, $dir, $domain) = @_;\n' +
    '  ("$dir/$domain.db", "$domain:x", "shop.${domain}_data", "${ domain }", "${domain}[0] ${domain}{k}",\n' +
    '   "$domain->x", "a@ b@", "postmaster\\@$domain", "$self")\n}';
  assert.deepEqual(values(body), [
    '/srv/www/example.com.db',
    'example.com:x',
    'shop.example.com_data',
    'example.com',
    'example.com[0] example.com{k}',
    'example.com->x',
    'a@ b@',
    'postmaster@example.com',
    'P',
  ]);
});

test('interpolations Perl reads as element access, dereference, arrays or package variables are not followed', () => {
  const cases: Array<[string, RegExp]> = [
    ['"$d[0]"', /element access "\$d\[\.\.\.\]"/],
    ['"$d{k}"', /element access "\$d\{\.\.\.\}"/],
    ['"$d->[0]"', /dereference/],
    ['"$d->{k}"', /dereference/],
    ['"user@$d"', /array interpolated/],
    ['"@d"', /array interpolated/],
    ['"$d::y"', /package variable/],
    ['"$d' + "'" + 's"', /old-style package separator/],
    ['"$1"', /capture variable/],
    ['"${\\ \'x\'}"', /expression/],
    ['"\\Ufoo"', /case-changing escape/],
  ];
  for (const [expr, construct] of cases) {
    const header = `${HEADER}my (@d, %d);\n`;
    const got = dynamic(`sub remote_files {\n my ($s, $d) = @_;\n (${expr} => 'x')\n}`, 'remote_files', header);
    assert.match(got.construct, construct, expr);
    assert.equal(got.line, 6, expr);
  }
});

test('comments anywhere, POD, __END__ and __DATA__ do not stop the reader', () => {
  const body = `# a comment before
=head1 NAME

sub remote_files { ('/pod' => 'not code') }

=cut

sub remote_files {   # trailing
    return (
        # a full-line comment inside the list
        '/a#b' => "c#d",    # '#' inside strings is text
        '/e' # between key and fat comma
            => 'f',
    );
}
__END__
sub remote_files { ('/after' => 'end') }
`;
  assert.deepEqual(values(body), ['/a#b', 'c#d', '/e', 'f']);
  assert.deepEqual(values("sub datadirs { qw(x) }\n__DATA__\nsub datadirs { 'y' }\n", 'datadirs'), ['x']);
});

test('the fat comma quotes a bareword; trailing and doubled commas are allowed', () => {
  assert.deepEqual(values('sub restores { (from => "x", -flag => 1,, mode => 0750,) }', 'restores'), [
    'from',
    'x',
    '-flag',
    { n: 1 },
    'mode',
    { n: 488 },
  ]);
});

test('return forms: return; return LIST; return qw; an implicit last value; an empty body', () => {
  assert.deepEqual(values('sub datadirs { return; }', 'datadirs'), []);
  assert.deepEqual(values('sub datadirs { return (); }', 'datadirs'), []);
  assert.deepEqual(values('sub datadirs { return qw{a b}; }', 'datadirs'), ['a', 'b']);
  assert.deepEqual(values("sub datadirs { return 'a', 'b'; 'never' }", 'datadirs'), ['a', 'b']);
  assert.deepEqual(values("sub datadirs { my $x = 'a'; ($x, 'b') }", 'datadirs'), ['a', 'b']);
  assert.deepEqual(values('sub datadirs { }', 'datadirs'), []);
  assert.deepEqual(values("sub datadirs { ; 'a'; ; }", 'datadirs'), ['a']);
  // The value of `my (...) = @_` as the last statement is the invocant: a trap, not followed.
  assert.match(dynamic('sub datadirs { my ($self) = @_; }', 'datadirs').construct, /no explicit return/);
});

test('every way of unpacking @_: the invocant is the package name', () => {
  const forms = [
    'my ($self, $dir, $domain) = @_;',
    'my ( $class, $dir, $domain ) = @_; my $self = $class;',
    'my (undef, $dir, $domain) = @_; my $self = __PACKAGE__;',
    'my $self = shift; my $dir = shift; my $domain = shift;',
    'my $self = shift @_; my $dir = shift(@_); my $domain = shift();',
    'shift; my ($dir, $domain) = @_; my $self = "P";',
    'my ($self, $dir, $domain, $extra, @rest) = @_;',
  ];
  for (const form of forms) {
    assert.deepEqual(
      values(`sub remote_files { ${form} ("$self:$dir" => $domain) }`),
      ['P:/srv/www', 'example.com'],
      form,
    );
  }
  assert.deepEqual(values("sub remote_files { ('/fixed' => 'x') }"), ['/fixed', 'x']);
  const sig = 'package P;\nuse v5.36;\n';
  assert.deepEqual(
    values('sub remote_files ($self, $dir, $domain) { ("$self:$dir" => $domain) }', 'remote_files', sig),
    ['P:/srv/www', 'example.com'],
  );
  assert.deepEqual(values('sub remote_files ($, $dir, $) { ($dir => "x") }', 'remote_files', sig), ['/srv/www', 'x']);
  assert.deepEqual(values("sub remote_files ($s, $d, $dom, $x = 'dflt') { ($x => $dom) }", 'remote_files', sig), [
    'dflt',
    'example.com',
  ]);
  assert.deepEqual(values('sub restores ($class, %opts) { () }', 'restores', sig), []);
});

test('signatures: checked like Perl checks them, and only where the feature is on', () => {
  const sig = 'package P;\nuse v5.36;\n';
  assert.deepEqual(fault('sub datadirs ($self, $what) { ($what) }', 'datadirs', sig), {
    line: 3,
    detail: "Too few arguments for subroutine 'P::datadirs' (got 1; expected 2)",
  });
  assert.match(
    fault('sub remote_files ($self) { () }', 'remote_files', sig).detail,
    /Too many arguments .* \(got 3; expected 1\)/,
  );
  assert.match(fault('sub remote_files ($self, $d = 1) { () }', 'remote_files', sig).detail, /expected at most 2/);
  assert.match(fault('sub remote_files ($c, $d, %o) { () }', 'remote_files', sig).detail, /Odd name\/value argument/);
  assert.deepEqual(values('sub datadirs ($c) { qw(a) }', 'datadirs', "package P;\nuse feature 'signatures';\n"), ['a']);
  assert.deepEqual(
    values('sub datadirs ($c) { qw(a) }', 'datadirs', 'package P;\nuse experimental qw(signatures);\n'),
    ['a'],
  );
  assert.deepEqual(values('sub datadirs ($c) { qw(a) }', 'datadirs', 'package P;\nuse 5.041;\n'), ['a']);
  // Without the feature `($$)` is a prototype (ignored for method calls), `($c)` something Perl rejects.
  assert.deepEqual(values('sub datadirs ($$) { qw(a) }', 'datadirs'), ['a']);
  assert.match(dynamic('sub datadirs ($c) { qw(a) }', 'datadirs').construct, /signatures feature is off/);
  assert.match(
    dynamic('sub datadirs ($c) { qw(a) }', 'datadirs', 'package P;\nuse Mojo::Base -base;\n').construct,
    /cannot be confirmed/,
  );
  // `use v5.10` replaces the feature bundle, signatures included.
  assert.match(
    dynamic('sub datadirs ($c) { 1 }', 'datadirs', "package P;\nuse feature 'signatures';\nuse v5.10;\n").construct,
    /off/,
  );
});

test('lexicals: strings, interpolation and concatenation of known values, then . in the list itself', () => {
  const body = `sub remote_files {
    my ($self, $dir, $domain) = @_;
    my $base = "$dir/$domain";
    my $db = $base . '/app' . ".db";
    my $cache;
    $cache = '/var/cache/';
    $cache .= $domain;
    return ($db => 'app/' . 'app.db', $cache . '/' => "cache");
  }`;
  assert.deepEqual(values(body), ['/srv/www/example.com/app.db', 'app/app.db', '/var/cache/example.com/', 'cache']);
});

test('numbers: octal, hex, binary and 0o literals are the value Perl holds; floats are not followed', () => {
  const body =
    'sub restores { ({ mode => 0750 }, { mode => 0o750 }, { mode => 0x1e8 }, { mode => 0b111101000 }, { mode => 488 }, { mode => 1_000 }) }';
  const modes = values(body, 'restores').map((h) => (h as Array<[string, unknown]>)[0]![1]);
  assert.deepEqual(modes, [{ n: 488 }, { n: 488 }, { n: 488 }, { n: 488 }, { n: 488 }, { n: 1000 }]);
  assert.match(dynamic('sub restores { ({ mode => 7.5 }) }', 'restores').construct, /numeric literal 7\.5/);
  assert.deepEqual(values("sub datadirs { ('v' . 10) }", 'datadirs'), ['v10']);
});

test('hash references: nested, +{...}, a missing last value is undef, a repeated key is kept for the caller', () => {
  const body = `sub restores {
    return { '/a' => { from => 'x', owner => 'u:g' }, '/b' => +{ 'from', 'y', 'mode' }, '/a' => { from => 'z' } };
  }`;
  assert.deepEqual(values(body, 'restores'), [
    [
      [
        '/a',
        [
          ['from', 'x'],
          ['owner', 'u:g'],
        ],
      ],
      [
        '/b',
        [
          ['from', 'y'],
          ['mode', null],
        ],
      ],
      ['/a', [['from', 'z']]],
    ],
  ]);
});

test('an undeclared variable under strict is the compile error Perl gives, with its line', () => {
  const body = 'sub remote_files {\n  my ($self, $dir, $domain) = @_;\n  ("$dir/$domian" => 1)\n}';
  assert.deepEqual(fault(body), {
    line: 5,
    detail: 'Global symbol "$domian" requires explicit package name (did you forget to declare "my $domian"?)',
  });
  assert.equal(fault(body, 'remote_files', 'package P;\nuse 5.041;\n').line, 5);
  assert.match(fault('sub datadirs { my $s = "x"; ("$s[0]") }', 'datadirs').detail, /Global symbol "@s"/);
  assert.match(fault('sub datadirs { ($self) }', 'datadirs').detail, /Global symbol "\$self"/);
  // Without strict it is a package variable; with a module that may enable strict, Perl decides.
  assert.match(dynamic(body, 'remote_files', 'package P;\n\n').construct, /global variable \$domian/);
  assert.match(dynamic(body, 'remote_files', 'package P;\nuse Moose;\n').construct, /global variable \$domian/);
  // Declared outside the sub: known to Perl, but its value is not followed.
  assert.match(
    dynamic('sub datadirs { ($base) }', 'datadirs', `${HEADER}my $base = '/x';\n`).construct,
    /\$base, declared outside the hook/,
  );
  assert.match(
    dynamic('sub datadirs { ($base) }', 'datadirs', `${HEADER}use vars qw($base);\n`).construct,
    /declared outside/,
  );
});

test('an undefined value in a string is refused, as perl refuses it (uninitialized warnings are fatal)', () => {
  assert.deepEqual(fault('sub remote_files {\n  my $spool;\n  ("$spool/x" => 1)\n}'), {
    line: 5,
    detail: 'Use of uninitialized value $spool in concatenation (.) or string',
  });
  assert.deepEqual(values('sub remote_files { my (undef, $d) = @_; my $x; ($x, undef) }'), [null, null]);
});

test('constructs that need running are reported with their line, never guessed', () => {
  const cases: Array<[string, string, RegExp]> = [
    ['my $x = ref($self) ? 1 : 2;', 'ref', /a call to ref\(\.\.\.\)/],
    ["my $x = $self ? 'a' : 'b';", 'ternary', /conditional \(\?:\)/],
    ["return ('a') if $self;", 'if', /"if"/],
    ["unless ($self) { return ('a') }", 'unless', /"unless"/],
    ["my $x = $self // 'a';", 'defined-or', /defined-or/],
    ["my $x = $self || 'a';", 'or', /logical or/],
    ['my $x = $self->spool;', 'method', /a method call \$self->spool/],
    ['my $x = $self->{spool};', 'deref', /a dereference \$self->\.\.\./],
    ["my $x = sprintf('%s', $self);", 'sprintf', /a call to sprintf/],
    ['return map { $_ => 1 } qw(a);', 'map', /"map"/],
    ['for my $d (qw(a)) { }', 'for', /"for"/],
    ['my $x = $ENV{HOME};', 'element', /element access \$ENV\{\.\.\.\}/],
    ['my $x = $_[0];', 'args element', /element access \$_\[\.\.\.\]/],
    ["return join('/', 'a');", 'join', /a call to join/],
    ["my $x = 'a' x 3;", 'repeat', /the operator "x"/],
    ["my $x = $self eq 'P';", 'eq', /the operator "eq"/],
    ['my $x = $self =~ /x/;', 'match', /pattern match/],
  ];
  for (const [stmt, name, construct] of cases) {
    const got = dynamic(`sub remote_files {\n  my ($self) = @_;\n  ${stmt}\n  ('a' => 'b')\n}`);
    assert.match(got.construct, construct, name);
    assert.equal(got.line, 5, name);
  }
  const heredoc = dynamic(
    "sub remote_prepare {\n  return (<<~'SH');\n    pg_dump\n    SH\n}\nsub datadirs { qw(after) }",
    'remote_prepare',
  );
  assert.deepEqual(heredoc, { line: 4, construct: 'a heredoc <<SH' });
  assert.deepEqual(
    values("sub remote_prepare {\n  return (<<~'SH');\n    pg_dump\n    SH\n}\nsub datadirs { qw(after) }", 'datadirs'),
    ['after'],
  );
});

test('module structure: package, parents, imports and run-time definitions', () => {
  const mod = parsePerlModule(
    "package A::B;\nuse parent -norequire, 'X', 'Y';\nuse base qw(Z);\nsub datadirs { 1 }\nsub Other::remote_files { 2 }\n",
  );
  assert.deepEqual(mod.pkg, { name: 'A::B', line: 1 });
  assert.deepEqual(mod.parents, ['X', 'Y', 'Z']);
  assert.deepEqual([...mod.subs.keys()], ['datadirs']);
  // `our @ISA = ...` runs after every `use parent`: it decides.
  assert.deepEqual(parsePerlModule("package P;\nuse parent 'X';\nour @ISA = ('Q');\n").parents, ['Q']);
  assert.equal(parsePerlModule("package P;\nour @ISA;\npush @ISA, 'Q';\n").parents, null);
  assert.equal(parsePerlModule("package P;\nuse Moo;\nextends 'Provisioner::Recipe::Redis';\n").parents, null);
  // A later definition replaces an earlier one, as in Perl.
  assert.deepEqual(values("sub datadirs { 'first' }\nsub datadirs { 'second' }", 'datadirs'), ['second']);
  // An absent hook is absent only if nothing can define it at run time.
  assert.deepEqual(read('sub datadirs { 1 }', 'remote_files'), { kind: 'absent' });
  assert.match(dynamic('use My::Helpers qw(remote_files);\n', 'remote_files').construct, /imported from My::Helpers/);
  assert.match(dynamic('*remote_files = sub { () };\n', 'remote_files').construct, /glob assignment/);
  assert.match(dynamic('sub AUTOLOAD { }\n', 'remote_files').construct, /AUTOLOAD/);
});

test('where the tokenizer stops, hooks before it are read and hooks after it are not', () => {
  const body = 'sub datadirs { qw(a) }\nsub helper { frobnicate / 2 }\nsub remote_skip { qw(b) }\n';
  assert.deepEqual(values(body, 'datadirs'), ['a']);
  assert.deepEqual(dynamic(body, 'remote_skip'), {
    line: 4,
    construct: 'a "/" after "frobnicate" (pattern or division?), past which the reader cannot see',
  });
  assert.equal(read(body, 'remote_files').kind, 'dynamic');
});

test('patterns, substitutions and hash keys that look like quote operators are tokenized as Perl does', () => {
  const body = `sub helper {
    my ($x, %h) = @_;
    $x =~ s{a}{b}g; $x =~ tr/a-z/A-Z/; $x =~ y|a|b|;
    my @parts = split /,/, $x;
    return -s $x, $h{s}, $h{q}, { y => 1, qw => 2 }, $x / 2;
  }
  sub datadirs { q{after} }`;
  assert.deepEqual(values(body, 'datadirs'), ['after']);
});
