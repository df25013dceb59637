import { UserError } from './errors.js';
import type { Settings } from './inputs.js';
import { buildPlan, type Plan } from './plan/plan.js';
import { loadRecipes } from './recipes/index.js';
import { templateValues } from './recipes/template.js';
import { planLogLines, planMarkdown } from './report/plan-report.js';
import type { Reporter } from './report/reporter.js';

/** Inputs → plan: the first step of every mode, and all of `mode: plan`. */
export async function makePlan(s: Settings): Promise<Plan> {
  const ctx = { installDir: s.installDir, domain: s.domain };
  const recipes = await loadRecipes(
    { sources: s.recipes, sourcesAreDefault: s.recipesAreDefault, workspace: s.workspace, distro: s.distro, only: s.only },
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

/** Runs one mode end to end: inputs → plan → transfer → store → report. */
export async function run(s: Settings, out: Reporter): Promise<void> {
  const plan = await makePlan(s);
  out.setOutput('plan', JSON.stringify(plan));
  await out.group('Plan', async () => {
    for (const line of planLogLines(plan)) out.info(line);
  });
  if (s.mode === 'plan') {
    await out.summary(planMarkdown(plan));
    return;
  }
  throw new UserError(`mode \`${s.mode}\` is not available in this version`);
}
