// Bundles src/ into the committed dist/ with esbuild.
// Why esbuild rather than ncc: it bundles the ESM-only toolkit packages without the `__dirname` crash,
// needs no TypeScript loader (tsc only type-checks), and its output is byte-for-byte reproducible, which
// is what `--check` (check-dist) relies on.
// ssh2's optional native helpers (`*.node`, cpu-features) stay external: ssh2 loads them in try/catch and
// falls back to its pure-JS paths, so dist/ never carries a binary built for one machine's Node.
import { build } from 'esbuild';
import { builtinModules } from 'node:module';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const check = process.argv.includes('--check');
const outdir = check ? mkdtempSync(join(tmpdir(), 'remote-files-dist-')) : 'dist';
// Chunk names carry a content hash: clear old ones, or dist/ keeps files nothing loads.
if (!check) rmSync(join(outdir, 'chunks'), { recursive: true, force: true });

// ESM output still meets CommonJS dependencies that call require() or read __dirname.
// `var`, not `const`: some ESM dependencies (@azure/storage-common) declare `var __filename` at their
// top level, and a `const` of the same name in the chunk is a SyntaxError at load time.
const banner = [
  "import { createRequire as __rfCreateRequire } from 'node:module';",
  "import { fileURLToPath as __rfFileURLToPath } from 'node:url';",
  "import { dirname as __rfDirname } from 'node:path';",
  'var require = __rfCreateRequire(import.meta.url);',
  'var __filename = __rfFileURLToPath(import.meta.url);',
  'var __dirname = __rfDirname(__filename);',
].join('\n');

// @actions/core imports @actions/http-client, whose first line imports undici (96 modules, 790 KB) for
// the one case of an HTTP proxy. Evaluating undici cost every run ~50 ms of startup, and even unevaluated
// its source is a third of what the step parses, in the step that needs no HTTP at all (a backup to a
// commit store). So undici is bundled on its own, as dist/chunks/undici.cjs (UNDICI_FILE), and:
//  - core's http-client requires it when a proxy agent is first built (its import line is replaced);
//  - @actions/github (artifact store only) gets it from that file too, so dist/ holds one copy.
const UNDICI_FILE = 'undici.cjs';
const UNDICI_IMPORT = "import { ProxyAgent } from 'undici';";
const UNDICI_REQUIRE = `require("./${UNDICI_FILE}")`;
const LAZY_IMPORTS = [
  ["import * as http from 'http';", 'http'],
  ["import * as https from 'https';", 'https'],
  ["import * as tunnel from 'tunnel';", 'tunnel'],
];
const lazyUndici = {
  name: 'lazy-undici',
  setup(b) {
    // The copy @actions/core uses; the older one below @actions/github loads only with the artifact store.
    const target = resolve('node_modules/@actions/http-client/lib/index.js');
    b.onLoad({ filter: /[\\/]@actions[\\/]http-client[\\/]lib[\\/]index\.js$/ }, async (args) => {
      if (args.path !== target) return undefined;
      const text = await readFile(args.path, 'utf8');
      // A newer http-client that changed this line must be looked at again, not bundled blindly.
      if (!text.includes(UNDICI_IMPORT))
        throw new Error(`${args.path}: expected "${UNDICI_IMPORT}" (see lazyUndici in scripts/bundle.mjs)`);
      const lazy = `let __rfUndici; function ProxyAgent(options) { __rfUndici ??= ${UNDICI_REQUIRE}; return new __rfUndici.ProxyAgent(options); }`;
      let contents = text.replace(UNDICI_IMPORT, lazy);
      // Likewise http, https and tunnel (which loads tls): the client only reads their members when a
      // request is made, so each becomes an object that loads the module on its first member read.
      // Saves ~10 ms of built-ins every run loads and no run without HTTP uses.
      contents = `const __rfLazy = (load) => { let m; return new Proxy({}, { get: (_, key) => (m ??= load())[key] }); };\n${contents}`;
      for (const [line, name] of LAZY_IMPORTS) {
        if (!contents.includes(line))
          throw new Error(`${args.path}: expected "${line}" (see lazyUndici in scripts/bundle.mjs)`);
        contents = contents.replace(line, `const ${name} = __rfLazy(() => require('${name}'));`);
      }
      return { contents, loader: 'js' };
    });
    b.onResolve({ filter: /^undici$/ }, () => ({ path: 'undici', namespace: 'undici-file' }));
    b.onLoad({ filter: /.*/, namespace: 'undici-file' }, () => ({
      contents: `module.exports = ${UNDICI_REQUIRE};`,
      loader: 'js',
    }));
    // esbuild emits that require as its `__require` helper, which calls the banner's `require` of the
    // chunk that defines the helper: the path is relative to that chunk, so it (like every chunk that
    // holds the require) must be in chunks/, beside the file.
    b.onResolve({ filter: new RegExp(`^\\./${UNDICI_FILE.replace('.', '\\.')}$`) }, (args) => ({
      path: args.path,
      external: true,
    }));
    b.onEnd((result) => {
      for (const file of Object.keys(result.metafile?.outputs ?? {})) {
        if (file.includes('/chunks/')) continue;
        const text = readFileSync(file, 'utf8');
        if (text.includes(UNDICI_REQUIRE) || text.includes('var __require = ')) {
          throw new Error(
            `${file} requires ./${UNDICI_FILE}, or defines the __require that does, but is not in chunks/ (see lazyUndici in scripts/bundle.mjs)`,
          );
        }
      }
    });
  },
};

// ssh2 builds a new AES-GCM cipher for every packet (the IV changes), from the raw key each time. On
// Node 24, turning the raw key into a key object is most of that cost: over SFTP, where every request
// and reply is a packet, 22% of the CPU of 2,000 small files. Given a KeyObject made once per key,
// createCipheriv skips that step. Same bytes, same algorithm.
const GCM_KEYS = ['this._encKey = enc.cipherKey;', 'this._decipherKey = dec.decipherKey;'];
const gcmKeyObjects = {
  name: 'gcm-key-objects',
  setup(b) {
    b.onLoad({ filter: /[\\/]ssh2[\\/]lib[\\/]protocol[\\/]crypto\.js$/ }, async (args) => {
      let text = await readFile(args.path, 'utf8');
      for (const line of GCM_KEYS) {
        if (text.split(line).length !== 2)
          throw new Error(`${args.path}: expected "${line}" once (see gcmKeyObjects in scripts/bundle.mjs)`);
        const [lhs, rhs] = line.slice(0, -1).split(' = ');
        text = text.replace(line, `${lhs} = require('crypto').createSecretKey(${rhs});`);
      }
      return { contents: text, loader: 'js' };
    });
  },
};

// An ESM `import ... from "http"` makes Node build a module facade for the built-in, and the facade
// reads every export once. On Node 24 that read is what loads Node's own undici (http's lazy WebSocket
// and friends, ~25 ms) and crypto's webcrypto (~6 ms): about 40 ms of every run's startup, for exports
// nothing here uses. A CommonJS require() of the same built-in returns the same object without the
// facade. So static imports of built-ins, in our sources and in bundled packages alike, become a
// require() through the banner's `require`; named imports read the same properties at use time.
const BUILTINS = new Set(builtinModules.filter((m) => !m.startsWith('_')));
const builtinsByRequire = {
  name: 'builtins-by-require',
  setup(b) {
    b.onResolve({ filter: /^(node:)?[a-z0-9_/]+$/ }, (args) => {
      if (args.kind !== 'import-statement') return undefined;
      const name = args.path.replace(/^node:/, '');
      if (!BUILTINS.has(name)) return undefined;
      return { path: name, namespace: 'builtin-by-require' };
    });
    b.onLoad({ filter: /.*/, namespace: 'builtin-by-require' }, (args) => ({
      contents: `module.exports = require(${JSON.stringify('node:' + args.path)});`,
      loader: 'js',
    }));
  },
};

await build({
  entryPoints: { index: 'src/index.ts', cli: 'src/cli.ts' },
  outdir,
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'esm',
  splitting: true,
  chunkNames: 'chunks/[name]-[hash]',
  banner: { js: banner },
  external: ['*.node', 'cpu-features'],
  legalComments: 'none',
  plugins: [builtinsByRequire, lazyUndici, gcmKeyObjects],
  metafile: true,
  logLevel: 'warning',
});

// undici on its own (see lazyUndici): CommonJS, as the package is, required only when needed.
await build({
  entryPoints: { [`chunks/${UNDICI_FILE.replace(/\.cjs$/, '')}`]: 'undici' },
  outExtension: { '.js': '.cjs' },
  outdir,
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  legalComments: 'none',
  logLevel: 'warning',
});

if (check) {
  const list = (dir, prefix = '') =>
    readdirSync(dir, { withFileTypes: true })
      .flatMap((e) => (e.isDirectory() ? list(join(dir, e.name), prefix + e.name + '/') : [prefix + e.name]))
      .sort();
  const want = list(outdir);
  const have = list('dist');
  const stale = want.filter(
    (f) => !have.includes(f) || !readFileSync(join(outdir, f)).equals(readFileSync(join('dist', f))),
  );
  const extra = have.filter((f) => !want.includes(f));
  rmSync(outdir, { recursive: true, force: true });
  if (stale.length || extra.length) {
    console.error(
      `dist/ is not what the sources build: ${[...stale, ...extra].join(', ')}. Run \`npm run bundle\` and commit dist/.`,
    );
    process.exit(1);
  }
  console.log('dist/ is up to date');
}
