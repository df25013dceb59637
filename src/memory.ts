import { getHeapStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/**
 * Keeps V8's young generation at its starting size. A backup holds one record per file for the whole
 * run, so nearly everything allocated while listing survives; V8 reads that as "grow the young
 * generation" and on Node 24 lets it reach 64 MB per semi-space, which at 50,000 files put the peak
 * resident size near 250 MB. Without growth it stays under 200 MB, at the price of more (cheap) minor
 * collections. Imported first by each entry point, before anything allocates much. This flag is read
 * at each growth decision, so setting it at run time works (the size flags are read only at start).
 */
setFlagsFromString('--semi-space-growth-factor=1');

/**
 * A full collection on request, from a context made after `--expose-gc` is set (the main one was made
 * before). Undefined where this Node will not give one: then nothing is asked for.
 */
setFlagsFromString('--expose-gc');
const fullGc: (() => void) | undefined = (() => {
  try {
    const gc: unknown = runInNewContext('gc');
    return typeof gc === 'function' ? (gc as () => void) : undefined;
  } catch {
    return undefined;
  }
})();

/** Heap growth since the last full collection that asks for the next one. */
const GROWTH = 24 << 20;
/** Files between two looks at the heap (a look costs a microsecond or two). */
const EVERY = 256;
let calls = 0;
let floor = 0;

/**
 * A full collection when the heap has grown by GROWTH since the last one. A backup of many files makes
 * mostly garbage (the listing's text, tar headers, a promise or two per file) that V8, growing its old
 * generation instead, collects late: at 50,000 files its heap held ~96 MB of which ~24 MB was live, and
 * the peak resident size moved between 186 and 215 MB from run to run against a 200 MB limit. Called
 * per file stored (looking every EVERY calls), and with `now` between phases; a run of a few thousand
 * files never reaches GROWTH, so it costs them nothing. One collection of such a heap takes ~20 ms.
 */
export function collectIfGrown(now = false): void {
  if (!fullGc || (!now && ++calls % EVERY !== 0)) return;
  if (getHeapStatistics().used_heap_size < floor + GROWTH) return;
  fullGc();
  floor = getHeapStatistics().used_heap_size;
}
