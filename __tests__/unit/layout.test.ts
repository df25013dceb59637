import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { test } from 'node:test';
import ts from 'typescript';

// The code's layout as CONTRIBUTING.md describes it: each room imports only below itself, so no module
// waits on one that waits on it. An import circle is how that erodes first (a helper moved up a layer
// "for now"); this keeps it from coming back unnoticed. File length is held by eslint (`max-lines`).

const ROOT = resolve(import.meta.dirname, '../..');

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return sources(p);
    return /\.(ts|mts|mjs|js)$/.test(e.name) && !e.name.includes('.generated.') ? [p] : [];
  });
}

/** Where a relative specifier lands: `./x.js` is written for `./x.ts` (NodeNext resolution). */
function resolveSpecifier(from: string, spec: string): string | undefined {
  const base = resolve(dirname(from), spec);
  const candidates = [
    base,
    base.replace(/\.js$/, '.ts'),
    base.replace(/\.js$/, '.d.ts'),
    `${base}.ts`,
    join(base, 'index.ts'),
  ];
  return candidates.find((c) => existsSync(c) && statSync(c).isFile());
}

/** Every relative import of a file: static, type-only, re-exports and dynamic `import()`. */
function importsOf(file: string): string[] {
  const source = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true);
  const specs: string[] = [];
  const visit = (n: ts.Node): void => {
    if (
      (ts.isImportDeclaration(n) || ts.isExportDeclaration(n)) &&
      n.moduleSpecifier &&
      ts.isStringLiteral(n.moduleSpecifier)
    )
      specs.push(n.moduleSpecifier.text);
    else if (ts.isCallExpression(n) && n.expression.kind === ts.SyntaxKind.ImportKeyword) {
      const [arg] = n.arguments;
      if (arg && ts.isStringLiteral(arg)) specs.push(arg.text);
    } else if (ts.isImportTypeNode(n) && ts.isLiteralTypeNode(n.argument) && ts.isStringLiteral(n.argument.literal))
      specs.push(n.argument.literal.text);
    ts.forEachChild(n, visit);
  };
  visit(source);
  return specs.filter((s) => s.startsWith('.')).map((s) => resolveSpecifier(file, s) ?? `${file} → ${s} (unresolved)`);
}

/** The first import circle found by a depth-first walk, as the files along it; undefined when none. */
export function findCircle(graph: Map<string, string[]>): string[] | undefined {
  const state = new Map<string, 'open' | 'done'>();
  const path: string[] = [];
  const walk = (f: string): string[] | undefined => {
    state.set(f, 'open');
    path.push(f);
    for (const g of graph.get(f) ?? []) {
      if (state.get(g) === 'open') return [...path.slice(path.indexOf(g)), g];
      if (!state.has(g)) {
        const found = walk(g);
        if (found) return found;
      }
    }
    path.pop();
    state.set(f, 'done');
    return undefined;
  };
  for (const f of graph.keys()) {
    if (state.has(f)) continue;
    const found = walk(f);
    if (found) return found;
  }
  return undefined;
}

test('the circle finder finds a circle, and none in a layered graph', () => {
  assert.deepEqual(
    findCircle(
      new Map([
        ['a', ['b']],
        ['b', ['c']],
        ['c', ['a']],
      ]),
    ),
    ['a', 'b', 'c', 'a'],
  );
  assert.equal(
    findCircle(
      new Map([
        ['a', ['b', 'c']],
        ['b', ['c']],
        ['c', []],
      ]),
    ),
    undefined,
  );
});

for (const room of ['src', 'scripts']) {
  test(`${room}/: every relative import resolves, and no import circle`, () => {
    const files = sources(join(ROOT, room));
    assert.ok(files.length > 10, `found the ${room} files`);
    const graph = new Map(files.map((f) => [f, importsOf(f)] as const));
    const unresolved = [...graph.values()].flat().filter((t) => t.endsWith('(unresolved)'));
    assert.deepEqual(unresolved, []);
    const circle = findCircle(graph);
    assert.equal(circle?.map((f) => relative(ROOT, f)).join(' → '), undefined, 'an import circle');
  });
}
