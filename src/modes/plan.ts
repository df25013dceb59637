import { UserError } from '../errors.js';
import type { Settings } from '../inputs.js';
import { buildPlan, type Plan } from '../plan/plan.js';
import { loadRecipes } from '../recipes/index.js';
import { templateValues } from '../recipes/template.js';
import { planLogLines, planMarkdown } from '../report/plan-report.js';
import type { Reporter } from '../report/reporter.js';
import { planEntries } from '../transfer/entries.js';

/** Inputs → plan: the first step of every mode, and all of `mode: plan`. */
export async function makePlan(s: Settings): Promise<Plan> {
  const ctx = { installDir: s.installDir, domain: s.domain, vars: s.vars };
  const recipes = await loadRecipes(
    {
      sources: s.recipes,
      sourcesAreDefault: s.recipesAreDefault,
      workspace: s.workspace,
      dataDir: s.dataDir,
      distro: s.distro,
      only: s.only,
    },
    ctx,
  );
  return buildPlan(recipes, {
    domain: s.domain,
    installDir: s.installDir,
    dataDir: s.dataDir,
    values: templateValues(s.domain, s.installDir, s.vars),
    dollarBraces: (file) => !file.endsWith('.pm'),
  });
}

/** The plan as output and log lines, in every mode; a plan with nothing to move stops a server mode here. */
export async function showPlan(s: Settings, plan: Plan, out: Reporter): Promise<void> {
  out.setOutput('plan', JSON.stringify(plan));
  await out.group('Plan', async () => {
    for (const line of planLogLines(plan)) out.info(line);
  });
  const nothing = nothingPlanned(s, plan);
  if (nothing && s.mode === 'plan') out.warning(nothing);
  else if (nothing) throw new UserError(nothing);
}

/** `mode: plan`: the plan shown is all there is; the step summary gets it too. */
export async function planMode(plan: Plan, out: Reporter): Promise<void> {
  await out.summary(planMarkdown(plan));
}

/**
 * A run with nothing to move is a mistake, not a success: most often the recipes are not there (no
 * actions/checkout before the step). An error for the server modes, a warning for `plan`.
 */
function nothingPlanned(s: Settings, plan: Plan): string | undefined {
  const what = s.mode === 'plan' ? 'nothing would be moved' : `nothing to ${s.mode}`;
  if (plan.recipes.length === 0) {
    return `${what}: no recipe that names remote files found in the workspace ${s.workspace} (looked for ${s.recipes.join(', ')}). Is the repository checked out before this step (actions/checkout)? Or set \`recipes\``;
  }
  if (planEntries(plan, s.exclude).length === 0)
    return `${what}: the recipes found (${plan.recipes.map((r) => r.name).join(', ')}) name no remote files`;
  return undefined;
}
