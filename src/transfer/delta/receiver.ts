// The blocks command of one batch: started at the first request, fed requests as the digests show
// changed blocks, its answers written into each file's copy in the order they were asked for, and each
// file stored (or sent to the whole-file fetch) once its last request is answered.
import { safeText } from '../../report/reporter.js';
import { BlockFeed, ShortError } from './local.js';
import { release, type FilePlan } from './items.js';
import { requestSpec, runBytes, type Run, type Tool } from './plan.js';
import type { DeltaSource } from './remote.js';
import type { DeltaRun, Requests } from './source.js';

/** A request's runs for a plan, or the plan's end: store it (or fetch it whole, with `why`). */
type Job = { plan: FilePlan; runs: Run[] } | { plan: FilePlan; settle: true };

interface Link {
  run: DeltaRun & Requests;
  feed: BlockFeed;
}

export class BlockReceiver {
  private readonly jobs: Job[] = [];
  private wake: (() => void) | undefined;
  private closed = false;
  private link: Promise<Link> | undefined;
  /** Why the answer can no longer be followed: every request after it is refused. */
  private broken: string | undefined;
  /** Why a plan cannot be stored (then it is fetched whole). */
  readonly why = new Map<FilePlan, string>();
  private readonly done: Promise<void>;

  constructor(
    private readonly source: DeltaSource,
    private readonly tool: Tool,
    private readonly names: string[],
    private readonly store: (plan: FilePlan, why: string | undefined) => Promise<void>,
  ) {
    this.done = this.loop();
    // Awaited by close(); a connection lost meanwhile must not count as unhandled until then.
    this.done.catch(() => undefined);
  }

  /** Asks for `runs` of `plan` (sorted, after any asked for before). */
  ask(plan: FilePlan, runs: Run[]): void {
    if (runs.length === 0) return;
    this.link ??= this.open();
    const request = Buffer.from(`${plan.item.remote}\0${requestSpec(runs, plan.header.blockSize)}\0`, 'utf8');
    void this.link.then((l) => l.run.send(request)).catch(() => undefined);
    this.push({ plan, runs });
  }

  /** The plan's requests are all made: once they are answered, it is stored (`why`: fetched whole instead). */
  settle(plan: FilePlan, why?: string): void {
    if (why !== undefined && !this.why.has(plan)) this.why.set(plan, why);
    this.push({ plan, settle: true });
  }

  /** No more requests: waits for every answer and store (throws when the connection was lost). */
  async close(): Promise<void> {
    if (this.closed) return this.done;
    this.closed = true;
    this.wake?.();
    void this.link?.then((l) => l.run.end()).catch(() => undefined);
    try {
      await this.done;
    } catch (err) {
      // The connection was lost: the plans still queued are released here (their temp copies removed).
      for (const plan of new Set(this.jobs.map((j) => j.plan))) await release(plan);
      throw err;
    } finally {
      if (this.link) await this.link.then((l) => l.run.stop()).catch(() => undefined);
    }
  }

  private async open(): Promise<Link> {
    const run = await this.source.blocks(this.tool, this.names);
    return { run, feed: new BlockFeed(run.reader) };
  }

  private push(job: Job): void {
    this.jobs.push(job);
    this.wake?.();
  }

  private async loop(): Promise<void> {
    for (;;) {
      const job = this.jobs.shift();
      if (!job) {
        if (this.closed) return;
        await new Promise<void>((wake) => (this.wake = wake));
        this.wake = undefined;
        continue;
      }
      if ('settle' in job) await this.store(job.plan, this.why.get(job.plan));
      else await this.answer(job.plan, job.runs);
    }
  }

  /** Reads one request's answer into the plan's copy; what cannot be used is noted in `why`. */
  private async answer(plan: FilePlan, runs: Run[]): Promise<void> {
    if (this.broken) return void (this.why.has(plan) || this.why.set(plan, this.broken));
    let link: Link;
    try {
      link = await this.link!;
    } catch (err) {
      this.broken = `the server's blocks were refused (${safeText((err as Error).message)})`;
      return this.answer(plan, runs);
    }
    const { run, feed } = link;
    feed.begin();
    try {
      // A plan already refused still has its answer read, to keep the stream in step.
      if (this.why.has(plan)) await feed.finish();
      else {
        await putRuns(plan, runs, feed);
        if (!(await feed.finish()))
          this.why.set(plan, "the server's blocks were refused (more bytes than were asked for)");
      }
    } catch (err) {
      if (run.lost()) throw run.lost()!;
      if (err instanceof CopyError) {
        // This side could not write it (the feed is still in step): the rest of its answer is read to its end.
        if (!this.why.has(plan)) this.why.set(plan, err.message);
        try {
          await feed.finish();
        } catch (e) {
          this.broken = `the server's blocks were refused (${safeText((e as Error).message)})`;
        }
        return;
      }
      if (err instanceof ShortError) {
        // Its `E` came early: the stream is still in step.
        if (!this.why.has(plan)) this.why.set(plan, 'it shrank on the server while its blocks were read');
        return;
      }
      this.broken = `the server's blocks were refused (${safeText((err as Error).message)})`;
      if (!this.why.has(plan)) this.why.set(plan, this.broken);
    }
  }
}

/** The temp copy cannot be written: a local failure, not the server's. */
class CopyError extends Error {}

/** One request's runs, in order, written over the plan's copy (pieces come in increasing offsets). */
async function putRuns(plan: FilePlan, runs: Run[], feed: BlockFeed): Promise<void> {
  const { blockSize, size } = plan.header;
  const patch = await plan.patch;
  if (!patch) throw new CopyError('its stored copy could not be copied');
  for (const r of runs) {
    let at = r.first * blockSize;
    for await (const piece of feed.take(runBytes(r, blockSize, size))) {
      // A write that fails here (a full disk, a stored copy shorter than its manifest says) is this
      // side's: the file is fetched whole, and the rest of its answer is still read.
      await patch.put(at, piece).catch((err: Error) => {
        throw new CopyError(`it could not be put together (${safeText(err.message)})`);
      });
      at += piece.length;
    }
  }
}
