// linux-only: runs perl through POSIX shell wrappers
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { readPerlRecipes, type PerlFile } from '../../src/recipes/perl/perl.js';
import type { RawRecipe } from '../../src/recipes/types.js';
import { rejection } from '../helpers/outcome.js';
import { testTempDir } from '../helpers/temp.js';

const ROOT = join(import.meta.dirname, '..', 'fixtures', 'recipes', 'perl');
const PERL = '/usr/bin/perl';
const CTX = { installDir: '/srv/www', domain: 'example.com' };

/** Fixture files by path below the fixture root, e.g. `lib/Provisioner/Recipe/Mail.pm`. */
function files(...rels: string[]): PerlFile[] {
  return rels.map((rel) => ({ abs: join(ROOT, rel), rel, name: rel.replace(/^.*\//, '').replace(/\.pm$/, '') }));
}
const good = (name: string): string => `lib/Provisioner/Recipe/${name}.pm`;
const broken = (name: string): string => `broken/lib/Provisioner/Recipe/${name}.pm`;

const EXPECTED: Record<string, Omit<RawRecipe, 'file'>> = {
  App: {
    name: 'App',
    remoteFiles: [
      ['/etc/app/keys/', 'app/keys/'],
      ['/srv/www/example.com/app.db', 'app/app.db'],
      ['/srv/www/shop.example.com_data/', 'shop/'],
      ['/var/spool/app/', 'app/spool'],
      ['/srv/[% domain %]/media', 'app/media'],
    ],
    datadirs: ['app', 'shop'],
    skip: ['secrets.key', '/cache/'],
    prepare: [],
    restores: [],
  },
  Redis: {
    name: 'Redis',
    remoteFiles: [['/var/lib/redis/', 'redis/']],
    datadirs: ['redis'],
    skip: [],
    prepare: ['redis-cli save', 'echo saved for example.com'],
    // A hashref has no order in Perl: sorted by destination.
    restores: [
      { to: '/etc/redis', from: '[% install_dir %]/[% domain %]/redis-conf', mode: '0640' },
      { to: '/var/lib/redis', from: '[% install_dir %]/[% domain %]/redis', owner: 'redis:redis', mode: '0750' },
    ],
  },
  Mail: {
    name: 'Mail',
    remoteFiles: [
      ['/etc/opendkim/keys/', 'mail/dkim/'],
      ['/srv/www/example.com/mail.db', 'mail/mail.db'],
      ['/var/spool/postfix/#queue', 'mail/queue'],
      ['/home/vmail/example.com/', 'mail/boxes/'],
      ['/srv/www/example.com/|pipe|', "mail/it's"],
      ['/etc/aliases.db', 'mail/aliases.db'],
      ['/srv/{nested}/braces', 'mail/(nested)'],
    ],
    datadirs: ['mail', 'mail/dkim', 'mail/boxes'],
    skip: ['*.lock', '/tmp/', "it's", 'back\\slash', 'kept\\n', 'dollar$sign', 'tab\there'],
    prepare: ['postqueue -f', 'doveadm backup -A -u "*@example.com"'],
    // A repeated destination keeps its last value at its first place, as a Perl hash assignment does.
    restores: [
      { to: '/etc/opendkim/keys', from: '[% install_dir %]/[% domain %]/mail/dkim2', mode: '0700' },
      { to: '/var/mail', from: '[% install_dir %]/[% domain %]/mail/boxes', owner: 'vmail', mode: '0750' },
    ],
  },
  Shop: {
    name: 'Shop',
    remoteFiles: [
      ['/srv/www/example.com/shop.db', 'shop/shop.db'],
      ['/srv/www/example.com/uploads/', 'shop/uploads-v2'],
      ['/srv/www/example.com/media/', 'shop/media'],
      ['/var/cache/example.com.db', 'shop/cache.db'],
    ],
    datadirs: [],
    skip: [],
    prepare: ['mysqldump shop > $HOME/shop.sql\t# nightly', 'tar -C /srv/www/example.com -cf - .'],
    restores: [],
  },
  Blog: {
    name: 'Blog',
    remoteFiles: [
      ['/srv/[% domain %]/media', 'blog/media'],
      ['/srv/www/example.com/wp-config.php', 'blog/wp-config.php'],
    ],
    datadirs: ['blog', 'blog/media'],
    skip: [],
    prepare: [],
    restores: [
      { to: '/etc/wordpress', from: '[% install_dir %]/[% domain %]/blog/etc', mode: '2750' },
      {
        to: '/srv/[% domain %]/media',
        from: '[% install_dir %]/[% domain %]/blog/media',
        owner: 'www-data:www-data',
        mode: '0750',
      },
    ],
  },
  Modern: {
    name: 'Modern',
    remoteFiles: [['/srv/www/example.com/full/', 'modern/full']],
    datadirs: ['modern'],
    skip: [],
    prepare: [],
    restores: [],
  },
  Queue: {
    name: 'Queue',
    remoteFiles: [
      ['/var/spool/queue/', 'queue/spool'],
      ['/srv/www/example.com/jobs.db', 'queue/jobs.db'],
    ],
    datadirs: [],
    skip: [],
    prepare: ['queuectl pause --all\n'],
    restores: [
      { to: '/var/spool/queue', from: '/srv/www/example.com/queue/spool', owner: 'queue:queue', mode: '0750' },
    ],
  },
};

const UBUNTU_REDIS: RawRecipe = {
  ...EXPECTED.Redis!,
  file: 'lib/Provisioner/Recipe/Ubuntu/Redis.pm',
  remoteFiles: [['/var/lib/redis/dump.rdb', 'redis/dump.rdb']],
};

/** Fixtures whose every hook the static reader follows. */
const STATIC_FIXTURES = [good('Redis'), good('Ubuntu/Redis'), good('Mail'), good('Shop'), good('Blog')];

test('every fixture reads to its exact hooks, in input order, with one perl for the whole call', async () => {
  const dir = testTempDir('perl-count-');
  try {
    const count = join(dir, 'count');
    const wrapper = join(dir, 'perl');
    writeFileSync(wrapper, `#!/bin/sh\necho run >> '${count}'\nexec ${PERL} "$@"\n`);
    chmodSync(wrapper, 0o755);
    const names = ['App', 'Redis', 'Ubuntu/Redis', 'Mail', 'Shop', 'Blog', 'Queue', 'Modern'];
    const got = await readPerlRecipes(files(...names.map(good)), CTX, { perl: wrapper });
    const want = names.map((n) => (n === 'Ubuntu/Redis' ? UBUNTU_REDIS : { ...EXPECTED[n]!, file: good(n) }));
    assert.deepEqual(got, want);
    assert.equal(readFileSync(count, 'utf8'), 'run\n');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('differential: for every fixture the static reader follows, perl evaluating every hook gives the same recipes', async () => {
  const statically = await readPerlRecipes(files(...STATIC_FIXTURES), CTX, { perl: null });
  const byPerl = await readPerlRecipes(files(...STATIC_FIXTURES), CTX, { perl: PERL, forcePerl: true });
  assert.deepEqual(statically, byPerl);
  assert.deepEqual(statically[1], UBUNTU_REDIS, 'inherited hooks are found statically too');
  // Where only some hooks are followable (App, Queue), the mix of static and perl answers agrees too.
  const all = files(
    ...['App', 'Queue', 'Modern', ...STATIC_FIXTURES.map((f) => f.slice('lib/Provisioner/Recipe/'.length, -3))].map(
      good,
    ),
  );
  assert.deepEqual(
    await readPerlRecipes(all, CTX, { perl: PERL }),
    await readPerlRecipes(all, CTX, { perl: PERL, forcePerl: true }),
  );
});

/** Hook forms the static reader follows, beyond the fixtures: each becomes a module of its own. */
const INLINE_FORMS: Array<[header: string, body: string]> = [
  ['use strict;', String.raw`sub remote_files { ('a\'b' => 'c\\d', 'e\nf' => '$x @y') }`],
  [
    'use strict;',
    String.raw`sub remote_files { ("\t|\n|\\|\"|\$x|\@y|\x41|\x{263A}|\101|\cA|\e|\N{U+263A}|\d|\o{101}" => 1) }`,
  ],
  [
    'use strict;',
    String.raw`sub datadirs { (q(a(b)c), q[a[b]], q{a{b}}, q<a<b>>, q/a\/b/, q|a\|b|, q!a!, q#a#, q (x), qq{d={x}}, qw/w1 w2/, qw[ w3
    w4 ], qw<w5>) }`,
  ],
  [
    'use strict;',
    'sub remote_files { my ($self, $dir, $domain) = @_; ("$dir/$domain.db", "$domain:x", "shop.${domain}_data", "${ domain }", ' +
      '"${domain}[0] ${domain}{k}", "$domain->x", "a@ b@", "postmaster\\@$domain", "$self", 1) }',
  ],
  ['use strict;', "sub datadirs { return 'a', 'b'; 'never' }"],
  ['use strict;', "sub datadirs { ; 'a'; ; }"],
  [
    'use strict;',
    'sub remote_files { my (undef, $dir, $domain) = @_; my $self = __PACKAGE__; ("$self:$dir" => $domain) }',
  ],
  [
    'use strict;',
    'sub remote_files { my $self = shift @_; my $dir = shift(@_); my $domain = shift(); ("$self:$dir" => $domain) }',
  ],
  ['use strict;', 'sub remote_files { shift; my ($dir, $domain) = @_; ($dir => $domain) }'],
  ['use strict;', 'sub remote_files { my ($self, $dir, $domain, $extra, @rest) = @_; ("$self:$dir" => $domain) }'],
  [
    'use strict;',
    "sub remote_files { my ($s, $dir, $domain) = @_; my $base = \"$dir/$domain\"; my $db = $base . '/app' . \".db\"; my $c; $c = '/var/'; $c .= $domain; ($db => 'app/' . 'app.db', $c . '/' => 'c') }",
  ],
  [
    'use strict;',
    "sub restores { return { '/a' => { from => 'x', owner => 'u:g', mode => 0x1e8 }, '/b' => +{ 'from', 'y', 'mode', 0b111101000 }, '/c' => { from => 'z', mode => 0o750 } }; }",
  ],
  ['use strict;', "sub datadirs { ('v' . 10, -5, 1_000, 0777, -bare => 1) }"],
  ['use strict;', 'sub remote_prepare { my ($s, $d, $dom) = @_; "pg_dump > \\$HOME/$dom.sql" }'],
  ['use v5.36;', 'sub remote_files ($, $dir, $) { ($dir => "x") }'],
  ['use v5.36;', "sub remote_files ($s, $d, $dom, $x = 'dflt') { ($x => $dom) }"],
  ['use v5.36;', 'sub restores ($class, %opts) { () }'],
  ['', 'sub datadirs ($$) { qw(prototype) }'],
];

test('differential: inline hook forms read statically equal what perl evaluates', async () => {
  const dir = testTempDir('perl-forms-');
  try {
    const lib = join(dir, 'lib', 'Provisioner', 'Recipe');
    mkdirSync(lib, { recursive: true });
    const forms = INLINE_FORMS.map(([header, body], i) => {
      writeFileSync(join(lib, `F${i}.pm`), `package Provisioner::Recipe::F${i};\n${header}\n${body}\n1;\n`);
      return { abs: join(lib, `F${i}.pm`), rel: `F${i}.pm`, name: `F${i}` };
    });
    const statically = await readPerlRecipes(forms, CTX, { perl: null });
    assert.deepEqual(statically, await readPerlRecipes(forms, CTX, { perl: PERL, forcePerl: true }));
    assert.deepEqual(statically[3]!.remoteFiles![2], ['example.com[0] example.com{k}', 'example.com->x']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('differential: a broken recipe the static reader refuses, perl refuses too, naming the same file', async () => {
  for (const name of ['Typo', 'Odd', 'NoFrom', 'BadMode', 'Arity', 'Uninit']) {
    const fromStatic = await rejection(readPerlRecipes(files(broken(name)), CTX, { perl: null }));
    const fromPerl = await rejection(readPerlRecipes(files(broken(name)), CTX, { perl: PERL, forcePerl: true }));
    assert.equal(fromStatic.file, broken(name));
    assert.equal(fromPerl.file, broken(name));
    assert.ok(fromStatic.line && fromPerl.line, `${name}: both name a line`);
  }
});

test('without perl, a hook the static reader cannot follow names file, line and construct, and says perl is needed', async () => {
  const app = await rejection(readPerlRecipes(files(good('App')), CTX, { perl: null }));
  assert.equal(
    app.message,
    'lib/Provisioner/Recipe/App.pm:9: remote_files: a call to ref(...) cannot be read without running the code; this requires perl to evaluate (not found on PATH)',
  );
  const queue = await rejection(readPerlRecipes(files(good('Queue')), CTX, { perl: null }));
  assert.match(
    queue.message,
    /^lib\/Provisioner\/Recipe\/Queue\.pm:10: remote_files: a method call \$class->spool_dir .*requires perl to evaluate \(not found on PATH\)$/,
  );
});

test("a module that does not compile is an error with Perl's own message, even when its hooks read statically", async () => {
  const typo = await rejection(readPerlRecipes(files(good('Blog'), broken('Typo')), CTX, { perl: PERL }));
  assert.equal(
    typo.message,
    `${broken('Typo')}:7: does not compile: Global symbol "$domian" requires explicit package name (did you forget to declare "my $domian"?) at ${broken('Typo')} line 7.`,
  );
  assert.deepEqual(await readPerlRecipes(files(broken('Syntax')), CTX, { perl: null }).then((r) => r[0]!.remoteFiles), [
    ['/etc/syntax', 'syntax'],
  ]);
  const syntax = await rejection(readPerlRecipes(files(broken('Syntax')), CTX, { perl: PERL }));
  assert.match(
    syntax.message,
    /^broken\/lib\/Provisioner\/Recipe\/Syntax\.pm:6: does not compile: syntax error at broken\/lib\/Provisioner\/Recipe\/Syntax\.pm line 6, near "= ;"$/,
  );
});

test("a hook that dies names the file, the hook and Perl's message", async () => {
  const dies = await rejection(readPerlRecipes(files(broken('Dies')), CTX, { perl: PERL }));
  assert.equal(
    dies.message,
    `${broken('Dies')}:4: remote_files died: no spool configured for Provisioner::Recipe::Dies`,
  );
  const uninit = await rejection(readPerlRecipes(files(broken('Uninit')), CTX, { perl: PERL, forcePerl: true }));
  assert.match(uninit.message, /:8: remote_files died: Use of uninitialized value \$spool in concatenation/);
});

test('hook results are checked: odd lists, restores without from, decimal modes', async () => {
  const odd = await rejection(readPerlRecipes(files(broken('Odd')), CTX, { perl: PERL }));
  assert.equal(
    odd.message,
    `${broken('Odd')}:5: remote_files: returns an odd number of elements (3): it must be remote => local pairs`,
  );
  const noFrom = await rejection(readPerlRecipes(files(broken('NoFrom')), CTX, { perl: PERL }));
  assert.equal(noFrom.message, `${broken('NoFrom')}:5: restores: "/etc/x" has no from (where its salvage was placed)`);
  const mode = await rejection(readPerlRecipes(files(broken('BadMode')), CTX, { perl: PERL, forcePerl: true }));
  assert.match(
    mode.message,
    /restores: the mode of "\/etc\/x" is the number 750 \(01356 in octal\); write it as a string '0750'/,
  );
});

test('perl is stopped when a hook runs too long, and the error names the file and the hook', async () => {
  const started = Date.now();
  const hang = await rejection(readPerlRecipes(files(broken('Hangs')), CTX, { perl: PERL, timeoutMs: 300 }));
  assert.equal(hang.message, `${broken('Hangs')}: perl was stopped after 0.3 s calling datadirs`);
  assert.ok(Date.now() - started < 3000);
});

test('a hook that exits, and two files declaring one package, are errors naming the file', async () => {
  const exits = await rejection(readPerlRecipes(files(broken('Exits')), CTX, { perl: PERL }));
  assert.equal(exits.message, `${broken('Exits')}: perl stopped while calling datadirs: noise on stdout`);
  const twin = await rejection(readPerlRecipes(files(broken('Odd'), broken('Twin')), CTX, { perl: null }));
  assert.equal(
    twin.message,
    `${broken('Twin')}:1: declares package Provisioner::Recipe::Odd, which ${broken('Odd')} declares too`,
  );
});

test('a module without a package statement, and an empty file list', async () => {
  const none = await rejection(readPerlRecipes(files(broken('NoPackage')), CTX, { perl: PERL }));
  assert.match(none.message, /NoPackage\.pm: no `package` statement/);
  assert.deepEqual(await readPerlRecipes([], CTX, { perl: PERL }), []);
});

test('the optional before_restore and after_restore hooks return command lists, read statically and by perl alike', async () => {
  const dir = testTempDir('rf-perl-around-');
  try {
    const rel = 'lib/Provisioner/Recipe/Svc.pm';
    mkdirSync(join(dir, 'lib/Provisioner/Recipe'), { recursive: true });
    writeFileSync(
      join(dir, rel),
      [
        'package Provisioner::Recipe::Svc;',
        'use strict;',
        "use parent 'Provisioner::Recipe';",
        'sub remote_files { my ($self, $install_dir, $domain) = @_; return ("$install_dir/$domain/svc" => \'svc\') }',
        "sub before_restore { return ('systemctl stop svc') }",
        'sub after_restore { my ($self, $install_dir, $domain) = @_; return ("svc-load $install_dir/$domain/svc/dump", \'systemctl start svc\') }',
        '1;',
        '',
      ].join('\n'),
    );
    const file = [{ abs: join(dir, rel), rel, name: 'Svc' }];
    for (const opts of [{ perl: null }, { perl: PERL, forcePerl: true }]) {
      const [svc] = await readPerlRecipes(file, CTX, opts);
      assert.deepEqual(svc!.beforeRestore, ['systemctl stop svc']);
      assert.deepEqual(svc!.afterRestore, ['svc-load /srv/www/example.com/svc/dump', 'systemctl start svc']);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
