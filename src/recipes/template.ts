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
  const replace = (_m: string, name: string): string => valueOf(name, text, values, file);
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

/**
 * A value that goes into a shell command as it is, wherever it stands: none of these characters means
 * anything to the shell (`domain` and `install-dir` are validated to a subset of them).
 */
const PLAIN_VALUE = /^[A-Za-z0-9._/+@:,=%-]*$/;

/** `'…'` with each `'` written `'\''`: the shell reads back exactly `value`, as one word (part). */
export function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/** Where a placeholder stands in a command's shell text, as far as quoting goes. */
export type CommandContext =
  | 'plain'
  | 'single-quotes'
  | 'double-quotes'
  | 'ansi-quotes'
  | 'backquotes'
  | 'comment'
  | 'heredoc'
  | 'nested'
  | 'backslash';

const CONTEXT_WORDS: Record<Exclude<CommandContext, 'plain'>, string> = {
  'single-quotes': "inside '…' quotes",
  'double-quotes': 'inside "…" quotes',
  'ansi-quotes': "inside $'…' quotes",
  backquotes: 'inside `…` backquotes',
  comment: 'in a # comment',
  heredoc: 'after a << here-document',
  nested: 'after a command substitution or ${…} opened inside "…" quotes',
  backslash: 'right after a backslash',
};

/**
 * Fills the placeholders of a `remote_prepare` command. The recipe's own text is code and runs as
 * written; a placeholder's value is data and must never become code. The rule, decided on the
 * command text as written (before any value is put in):
 *
 * - A value of only letters, digits and `. _ / + @ : , = % -` goes in as it is, anywhere.
 * - Any other value (spaces, `;`, quotes, `$`, …) is single-quoted (`'` written `'\''`) where the
 *   placeholder stands unquoted in the command — outside quotes, backquotes, comments and here-documents,
 *   and not after a backslash —, so the shell reads it back as one literal word (or word part).
 * - Anywhere else quoting would change what the command means (a `'` inside "…" is a literal
 *   character, also inside a `${…}` or `$(…)` opened within "…"; a here-document or comment ends at a
 *   newline whatever quotes say), so such a value is refused with an error naming the recipe, the file
 *   and the value.
 * - A value that begins with `-` is refused anywhere: quoted or not, a command reads it as an option.
 *
 * This guards the shell that runs the command. A command that evaluates its arguments again (`eval`,
 * `sh -c`, `ssh host …`) is the recipe's own code: it gets the literal value, and what it does with it
 * is as written.
 */
export function resolveCommand(
  text: string,
  values: TemplateValues,
  file: string,
  dollarBraces: boolean,
  recipe: string,
): string {
  const placeholder = dollarBraces
    ? /\[%\s*([A-Za-z_][A-Za-z0-9_]*)\s*%\]|\$\{([A-Za-z_][A-Za-z0-9_]*)\}/y
    : /\[%\s*([A-Za-z_][A-Za-z0-9_]*)\s*%\]/y;
  let out = '';
  let state: CommandContext = 'plain';
  let escaped = false;
  for (let i = 0; i < text.length;) {
    placeholder.lastIndex = i;
    const m = placeholder.exec(text);
    if (m) {
      const name = (m[1] ?? m[2])!;
      const value = valueOf(name, text, values, file);
      const context: CommandContext = escaped ? 'backslash' : state;
      escaped = false;
      // Quoting keeps a value one word, but `-rf` quoted is still an option to the command it reaches.
      if (value.startsWith('-')) throw optionRefusal(file, recipe, text, m[0], name, value);
      if (context === 'plain') out += value !== '' && PLAIN_VALUE.test(value) ? value : shellQuote(value);
      else if (PLAIN_VALUE.test(value)) out += value;
      else throw refusal(file, recipe, text, m[0], name, value, context);
      i += m[0].length;
      continue;
    }
    const c = text[i]!;
    out += c;
    i++;
    if (escaped) {
      escaped = false;
      continue;
    }
    switch (state) {
      case 'plain':
        if (c === '\\') escaped = true;
        else if (c === "'") state = text[i - 2] === '$' ? 'ansi-quotes' : 'single-quotes';
        else if (c === '"') state = 'double-quotes';
        else if (c === '`') state = 'backquotes';
        else if (c === '#' && (i === 1 || /[\s;&|()<>]/.test(text[i - 2]!))) state = 'comment';
        else if (c === '<' && text[i] === '<') state = 'heredoc';
        break;
      case 'single-quotes':
        if (c === "'") state = 'plain';
        break;
      case 'double-quotes':
        // Quotes nest again inside `$(…)`, `…` or `${…}` within "…" (`"${X:-"[% v %]"}"`: the inner
        // quotes open a new "…", where a '…' around a value is literal): not followed here, so
        // nothing after it counts as unquoted.
        if (c === '`' || (c === '$' && (text[i] === '(' || text[i] === '{'))) state = 'nested';
        else if (c === '\\') escaped = true;
        else if (c === '"') state = 'plain';
        break;
      case 'ansi-quotes':
      case 'backquotes':
        if (c === '\\') escaped = true;
        else if (c === (state === 'backquotes' ? '`' : "'")) state = 'plain';
        break;
      case 'comment':
        if (c === '\n') state = 'plain';
        break;
      case 'heredoc':
      case 'nested':
        break;
    }
  }
  return out;
}

function refusal(
  file: string,
  recipe: string,
  text: string,
  shown: string,
  name: string,
  value: string,
  context: Exclude<CommandContext, 'plain'>,
): RecipeError {
  const input = inputOf(name);
  const odd = [...new Set([...value].filter((c) => !PLAIN_VALUE.test(c)))]
    .map((c) => (c === ' ' ? 'a space' : JSON.stringify(c)))
    .join(', ');
  return new RecipeError(
    file,
    undefined,
    `recipe ${recipe}: remote_prepare command ${JSON.stringify(text)}: ${shown} stands ${CONTEXT_WORDS[context]}, and its value from ${input}, ${JSON.stringify(value)}, holds ${odd}. ` +
      `There it could run as code, and quoting it would change the command: refused, nothing was run. ` +
      `Write the placeholder unquoted in the recipe (the value is then quoted for the shell), or set \`${name}\` to letters, digits and . _ / + @ : , = % - only`,
  );
}

function inputOf(name: string): string {
  return name === 'domain' ? 'input `domain`' : name === 'install_dir' ? 'input `install-dir`' : 'input `vars`';
}

function optionRefusal(
  file: string,
  recipe: string,
  text: string,
  shown: string,
  name: string,
  value: string,
): RecipeError {
  return new RecipeError(
    file,
    undefined,
    `recipe ${recipe}: remote_prepare command ${JSON.stringify(text)}: the value of ${shown} from ${inputOf(name)}, ${JSON.stringify(value)}, begins with "-", which the command would read as an option, quoted or not: refused, nothing was run. ` +
      `Give \`${name}\` a value that does not begin with "-" (a path: ./-name)`,
  );
}

/** A placeholder's value; an unknown name is an error naming the file, the text and how to set it. */
function valueOf(name: string, text: string, values: TemplateValues, file: string): string {
  const value = values.get(name);
  if (value !== undefined) return value;
  const known = [...values.keys()].sort().join(', ');
  throw new RecipeError(
    file,
    undefined,
    `unknown placeholder "${name}" in "${text}" (known: ${known}; add it with the \`vars\` input as ${name}=VALUE)`,
  );
}
