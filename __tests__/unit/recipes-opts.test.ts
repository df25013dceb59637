// linux-only: runs the system perl at /usr/bin/perl, which Windows runners lack
import assert from 'node:assert/strict';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { buildPlan, type PlanSettings } from '../../src/plan/plan.js';
import { readPerlRecipes, type PerlFile } from '../../src/recipes/perl/perl.js';
import { templateValues } from '../../src/recipes/template.js';
import { readTwinRecipes } from '../../src/recipes/twin.js';
import type { RawRecipe } from '../../src/recipes/types.js';
import { rejection } from '../helpers/outcome.js';
import { testTempDir } from '../helpers/temp.js';

// restores(%opts) gets the whole configuration: install_dir, domain and every `vars` entry.

const PERL = '/usr/bin/perl';
const root = testTempDir('rf-opts-');
after(() => rmSync(root, { recursive: true, force: true }));

function recipe(name: string, body: string): PerlFile {
  const rel = `lib/Provisioner/Recipe/${name}.pm`;
  mkdirSync(join(root, 'lib/Provisioner/Recipe'), { recursive: true });
  writeFileSync(
    join(root, rel),
    `package Provisioner::Recipe::${name};\nuse strict;\nuse warnings;\n\nsub restores {\n${body}\n}\n\n1;\n`,
  );
  return { abs: join(root, rel), rel, name };
}

const ctx = (vars: Record<string, string>) => ({
  installDir: '/srv/www',
  domain: 'example.com',
  vars: new Map(Object.entries(vars)),
});

async function restoresOf(file: PerlFile, vars: Record<string, string>): Promise<RawRecipe['restores']> {
  const [r] = await readPerlRecipes([file], ctx(vars), { perl: PERL });
  return r!.restores;
}

const ADMIN = recipe(
  'Admin',
  `    my ( $class, %opts ) = @_;
    return (
        '/var/lib/app' => { from => "$opts{install_dir}/$opts{domain}/app", owner => "$opts{admin_user}:www-data", mode => '0750' },
    );`,
);

test('every vars entry reaches %opts, with install_dir and domain', async () => {
  assert.deepEqual(await restoresOf(ADMIN, { admin_user: 'deploy', admin_email: 'ops@example.com' }), [
    { to: '/var/lib/app', from: '/srv/www/example.com/app', owner: 'deploy:www-data', mode: '0750' },
  ]);
  // A vars entry named like the run's own values does not replace them.
  assert.deepEqual(
    await restoresOf(ADMIN, { admin_user: 'deploy', domain: 'evil.example' }).then((r) => r[0]!.from),
    '/srv/www/example.com/app',
  );
});

test('a key nobody set: an error naming the recipe, its file and line, the key and the vars input', async () => {
  const e = await rejection(restoresOf(ADMIN, { admin_email: 'ops@example.com' }));
  assert.equal(e.file, ADMIN.rel);
  assert.equal(e.line, 8);
  assert.match(e.message, /recipe Admin: restores reads \$opts\{admin_user\}, which is not set/);
  assert.match(e.message, /`vars` input \(set: admin_email\)/);
  assert.match(e.message, /add admin_user=VALUE to `vars`/);
});

test('a key read as a whole value (not in a string), unset: named too', async () => {
  const plain = recipe(
    'Plain',
    `    my ( $class, %opts ) = @_;\n    return ( '/etc/app' => { from => '/srv/www/example.com/etc', owner => $opts{user} } );`,
  );
  assert.deepEqual(await restoresOf(plain, { user: 'app' }), [
    { to: '/etc/app', from: '/srv/www/example.com/etc', owner: 'app' },
  ]);
  const e = await rejection(restoresOf(plain, {}));
  assert.match(
    e.message,
    /^lib\/Provisioner\/Recipe\/Plain\.pm:\d+: recipe Plain: restores reads \$opts\{user\}, which is not set.*`vars` input \(none set\)/,
  );
});

test('a recipe that handles a missing key works as in Perl: //, ||, exists, defined', async () => {
  const fallback = recipe(
    'Fallback',
    `    my ( $self, %opts ) = @_;
    my $owner = $opts{user} // $opts{admin_user};
    my $group = $opts{group} || 'www-data';
    my $mode  = exists $opts{mode} ? $opts{mode} : '0750';
    my %r = ( '/srv/app' => { from => "$opts{install_dir}/$opts{domain}/app", owner => "$owner:$group", mode => $mode } );
    $r{'/etc/mailname'} = { from => "$opts{install_dir}/$opts{domain}/mailname" } if defined $opts{admin_email};
    return %r;`,
  );
  const got = (vars: Record<string, string>) =>
    restoresOf(fallback, vars).then((r) => r.map((x) => `${x.to} ${x.owner ?? '-'} ${x.mode ?? '-'}`).sort());
  assert.deepEqual(await got({ admin_user: 'deploy' }), ['/srv/app deploy:www-data 0750']);
  assert.deepEqual(await got({ admin_user: 'deploy', user: 'app', group: 'app', mode: '0700', admin_email: 'a@b' }), [
    '/etc/mailname - -',
    '/srv/app app:app 0700',
  ]);
  // Neither user nor admin_user: the one without a fallback is named.
  const e = await rejection(restoresOf(fallback, {}));
  assert.match(
    e.message,
    /recipe Fallback: restores reads \$opts\{admin_user\}, which is not set\..*add admin_user=VALUE to `vars`/,
  );
});

test('a recipe that drops an entry depending on the configuration', async () => {
  const optional = recipe(
    'Optional',
    `    my ( $class, %opts ) = @_;\n    return () unless $opts{backup_mail};\n    return ( '/var/mail' => { from => '/srv/www/example.com/mail', owner => 'vmail' } );`,
  );
  assert.deepEqual(await restoresOf(optional, {}), []);
  assert.equal((await restoresOf(optional, { backup_mail: '1' })).length, 1);
});

test('remote_skip returning a qr{} is an error naming file, line and hook', async () => {
  const rel = 'lib/Provisioner/Recipe/Qr.pm';
  writeFileSync(
    join(root, rel),
    `package Provisioner::Recipe::Qr;\nuse strict;\n\nsub remote_files { return ('/etc/qr/' => 'qr') }\n\nsub remote_skip {\n    return ( '*.log', qr{\\.tmp$} );\n}\n\n1;\n`,
  );
  const e = await rejection(readPerlRecipes([{ abs: join(root, rel), rel, name: 'Qr' }], ctx({}), { perl: PERL }));
  assert.equal(e.file, rel);
  assert.equal(e.line, 6);
  assert.match(e.message, /remote_skip: element 2 is a qr\{\} regular expression, which rsync cannot take/);
});

// The plan: placeholders in restores (Perl [% name %], twins' ${name} too) come from the same values.

const settings: PlanSettings = {
  domain: 'example.com',
  installDir: '/srv/www',
  dataDir: 'data',
  values: templateValues('example.com', '/srv/www', new Map([['admin_user', 'deploy']])),
  dollarBraces: (f) => f.endsWith('.yml'),
};

test('a twin’s ${name} and [% name %] in restores resolve from install_dir, domain and vars; an unknown one names vars', () => {
  const [twin] = readTwinRecipes(
    [
      'recipes:',
      '  App:',
      '    remote_files: { /var/lib/app/: app }',
      '    restores:',
      '      "/var/lib/${domain}":',
      '        from: "${install_dir}/${domain}/app/data"',
      '        owner: "${admin_user}:[% admin_user %]"',
      '        mode: "0750"',
    ].join('\n'),
    'recipes/app.yml',
  );
  const plan = buildPlan([twin!], settings);
  assert.deepEqual(plan.recipes[0]!.restores, [
    {
      to: '/var/lib/example.com',
      from: '/srv/www/example.com/app/data',
      owner: 'deploy:deploy',
      mode: '0750',
      local: 'app/data',
    },
  ]);
  const [unknown] = readTwinRecipes(
    'recipes:\n  App:\n    restores:\n      /x:\n        from: /srv/www/example.com/app\n        owner: "${user}"\n',
    'recipes/app.yml',
  );
  assert.throws(
    () => buildPlan([unknown!], settings),
    /^RecipeError: recipes\/app\.yml: recipe App: restores owner "\$\{user\}": unknown placeholder "user".*`vars` input as user=VALUE/m,
  );
  const spaced = { ...settings, values: templateValues('example.com', '/srv/www', new Map([['who', 'a b']])) };
  assert.throws(
    () =>
      buildPlan([raw('S', 'lib/S.pm', [{ to: '/x', from: '/srv/www/example.com/app', owner: '[% who %]' }])], spaced),
    /recipe S: restores owner "\[% who %\]" must be user or user:group, got "a b"/,
  );
});

const raw = (name: string, file: string, restores: RawRecipe['restores']): RawRecipe => ({
  name,
  file,
  remoteFiles: [],
  datadirs: [],
  skip: [],
  prepare: [],
  restores,
});

test('two recipes giving one destination different specs: an error naming both; the same spec is one restore', () => {
  const a = raw('Nginx', 'lib/Nginx.pm', [
    { to: '/etc/ssl/private', from: '/srv/www/example.com/ssl', owner: 'root:ssl-cert', mode: '0710' },
  ]);
  const b = raw('Mail', 'lib/Mail.pm', [
    { to: '/etc/ssl/private/', from: '/srv/www/example.com/ssl', owner: 'root:ssl-cert', mode: '0700' },
  ]);
  assert.throws(
    () => buildPlan([a, b], settings),
    /two recipes give \/etc\/ssl\/private different specs: recipe Nginx \(lib\/Nginx\.pm\) gives .*mode => 0710.*; recipe Mail \(lib\/Mail\.pm\) gives .*mode => 0700/,
  );
  const same = buildPlan([a, { ...b, restores: [{ ...a.restores[0]!, to: '/etc/ssl/private/' }] }], settings);
  assert.deepEqual(
    same.recipes.map((r) => r.restores.length),
    [1, 0],
  );
});
