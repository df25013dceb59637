import type { ErrorObject } from 'ajv';
import { LineCounter, parseDocument, isMap, isNode, isScalar } from 'yaml';
import { RecipeError } from '../errors.js';
import { nearestName } from '../nearest.js';
// schema/remote-files.schema.json, compiled ahead of time (scripts/gen-validator.mjs).
import validate from './twin-validator.generated.js';
import type { RawRecipe, RestoreSpec } from './types.js';

// The YAML/JSON "twin" of Perl recipes. JSON is YAML, so one parser reads both and gives line numbers.

interface TwinRecipe {
  remote_files?: Record<string, string>;
  datadirs?: string[];
  remote_skip?: string[];
  remote_prepare?: string[];
  before_restore?: string[];
  after_restore?: string[];
  restores?: Record<string, { from: string; owner?: string; mode?: string | number }>;
}

/** Reads every recipe of one YAML or JSON file. `rel` is the workspace-relative name used in errors. */
export function readTwinRecipes(text: string, rel: string): RawRecipe[] {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: true });
  const problem = doc.errors[0];
  if (problem) {
    throw new RecipeError(rel, problem.linePos?.[0]?.line, `not valid YAML/JSON: ${problem.message.split('\n')[0]}`);
  }
  const data: unknown = doc.toJS();
  if (!validate(data)) {
    // An unknown key at the top (`remote-files:`, `remote_files:` without `recipes:`) explains more than
    // the "needs recipes" the schema may report first.
    const err = unknownTopKey(data) ?? validate.errors![0]!;
    const keyPath = pointerToKeys(err.instancePath);
    // Point at the offending key itself where there is one, else at the value that failed.
    const extra = err.keyword === 'additionalProperties' ? [String(err.params.additionalProperty)] : [];
    const node = extra.length ? keyNode(doc.getIn(keyPath, true) ?? doc.contents, extra[0]!) : doc.getIn(keyPath, true);
    const line = isNode(node) && node.range ? lines.linePos(node.range[0]).line : undefined;
    throw new RecipeError(rel, line, `${describeKeyPath(keyPath)} ${describeError(err)}`);
  }
  const file = data as { recipes: Record<string, TwinRecipe> };
  return Object.entries(file.recipes).map(([name, r]) => ({
    name,
    file: rel,
    remoteFiles: r.remote_files ? Object.entries(r.remote_files) : null,
    datadirs: r.datadirs ?? [],
    skip: r.remote_skip ?? [],
    prepare: r.remote_prepare ?? [],
    ...(r.before_restore?.length && { beforeRestore: r.before_restore }),
    ...(r.after_restore?.length && { afterRestore: r.after_restore }),
    restores: Object.entries(r.restores ?? {}).map(([to, spec]): RestoreSpec => ({
      to,
      from: spec.from,
      ...(spec.owner !== undefined && { owner: spec.owner }),
      ...(spec.mode !== undefined && { mode: octalMode(spec.mode) }),
    })),
  }));
}

/** "0750", "750" and the YAML integer 750 all mean rwxr-x---; stored as four octal digits. */
function octalMode(mode: string | number): string {
  return String(mode).padStart(4, '0');
}

function pointerToKeys(pointer: string): string[] {
  return pointer === ''
    ? []
    : pointer
        .slice(1)
        .split('/')
        .map((k) => k.replace(/~1/g, '/').replace(/~0/g, '~'));
}

function describeKeyPath(keys: string[]): string {
  if (keys.length === 0) return 'the top level';
  return keys
    .map((k, i) => (/^[A-Za-z_][A-Za-z0-9_-]*$/.test(k) ? (i ? '.' : '') + k : `[${JSON.stringify(k)}]`))
    .join('');
}

/** The keys each level of the file may hold (schema/remote-files.schema.json): for "did you mean". */
const TOP_KEYS = ['version', 'recipes'];
const RECIPE_KEYS = [
  'remote_files',
  'datadirs',
  'remote_skip',
  'remote_prepare',
  'before_restore',
  'after_restore',
  'restores',
];
const RESTORE_KEYS = ['from', 'owner', 'mode'];

function unknownTopKey(data: unknown): ErrorObject | undefined {
  if (typeof data !== 'object' || data === null || Array.isArray(data)) return undefined;
  const key = Object.keys(data).find((k) => !TOP_KEYS.includes(k));
  return key === undefined
    ? undefined
    : ({
        keyword: 'additionalProperties',
        instancePath: '',
        schemaPath: '#/additionalProperties',
        params: { additionalProperty: key },
      } as ErrorObject);
}

/** The node of `key` itself in a mapping (its line, not its value's, which may start below it). */
function keyNode(map: unknown, key: string): unknown {
  if (!isMap(map)) return undefined;
  const pair = map.items.find((p) => isScalar(p.key) && String(p.key.value) === key);
  return pair?.key ?? pair?.value;
}

/** "did you mean": the nearest key of that level, or a recipe's key written at the top. */
function didYouMean(key: string, depth: number): string {
  const level = depth === 0 ? TOP_KEYS : depth === 2 ? RECIPE_KEYS : depth === 4 ? RESTORE_KEYS : [];
  const near = nearestName(key, level);
  if (near) return `: did you mean "${near}"?`;
  const recipeKey = depth === 0 ? nearestName(key, RECIPE_KEYS) : undefined;
  if (recipeKey)
    return `${recipeKey === key ? ':' : `: did you mean "${recipeKey}"?`} it belongs inside a recipe: "version: 1", then "recipes:", a recipe name, and its "${recipeKey}:" below it`;
  return level.length ? ` (known here: ${level.join(', ')})` : '';
}

function describeError(err: ErrorObject): string {
  if (err.keyword === 'additionalProperties') {
    const key = String(err.params.additionalProperty);
    return `has an unknown key "${key}"${didYouMean(key, pointerToKeys(err.instancePath).length)}`;
  }
  if (err.keyword === 'required') return `needs the key "${String(err.params.missingProperty)}"`;
  if (err.keyword === 'propertyNames')
    return `has a key that is not a valid recipe name "${String(err.params.propertyName)}"`;
  if (err.instancePath.endsWith('/mode')) return 'must be an octal mode such as "0750"';
  return err.message ?? 'is invalid';
}
