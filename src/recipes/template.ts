import { RecipeError } from '../errors.js';

/** Values a placeholder can name: `domain`, `install_dir` and the user's `vars`. */
export type TemplateValues = ReadonlyMap<string, string>;

export function templateValues(domain: string, installDir: string, vars: ReadonlyMap<string, string>): TemplateValues {
  return new Map([...vars, ['domain', domain], ['install_dir', installDir]]);
}

// `[% name %]` is the provisioner's own (Template Toolkit) syntax, valid in every recipe format.
const TT = /\[%\s*([A-Za-z_][A-Za-z0-9_]*)\s*%\]/g;
// `${name}` only in YAML/JSON twins: in Perl it is Perl's own interpolation, already done by the reader.
const SHELLISH = /\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g;

/**
 * Replaces placeholders in `text`. An unknown name is an error naming the file: an empty string in its
 * place would silently salvage (or restore to) the wrong path.
 */
export function resolveTemplate(text: string, values: TemplateValues, file: string, dollarBraces: boolean): string {
  const replace = (_m: string, name: string): string => {
    const value = values.get(name);
    if (value === undefined) {
      const known = [...values.keys()].sort().join(', ');
      throw new RecipeError(file, undefined, `unknown placeholder "${name}" in "${text}" (known: ${known}; add it with the \`vars\` input as ${name}=VALUE)`);
    }
    return value;
  };
  const once = text.replace(TT, replace);
  return dollarBraces ? once.replace(SHELLISH, replace) : once;
}

/** Parses the `vars` input: one KEY=VALUE per line; blank lines and `#` comments are skipped. */
export function parseVars(text: string, inputName = 'vars'): Map<string, string> {
  const vars = new Map<string, string>();
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const m = /^([A-Za-z_][A-Za-z0-9_]*)\s*=(.*)$/.exec(line);
    if (!m) throw new RecipeError(`input \`${inputName}\``, i + 1, `expected KEY=VALUE, got "${line}"`);
    vars.set(m[1]!, m[2]!.trim());
  });
  return vars;
}
