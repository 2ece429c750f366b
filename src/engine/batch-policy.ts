// What runs next, for the BatchScheduler (scheduler.ts), which holds the waiting calls and runs
// them: the batch limits of each device, the cohort bookkeeping (results handed out whose callers
// are still away), when the next run may start, and which calls it takes. No model and no timers
// here: every decision is a function of the waiting calls and the clock, so it can be tested on its
// own.
//
// Rules, and why:
// - Priority first, always: the next run is led by the highest-priority call that may run, then the
//   one of the job queued first (then the oldest call), whatever its kind. Among equal priorities
//   the job queued first so finishes first, as when jobs run one after another, instead of every
//   job advancing in turn and all finishing late; the others' calls run while its caller is away. A full batch of lower-priority work never jumps ahead of it: on the
//   CPU an encoder batch of one window is always "full", and letting full batches go first made
//   every partial's encoder run (the costliest call there) overtake a final's decoder steps. That is
//   what made batched streams slower than one call at a time (BENCHMARKS.md, streams).
// - With the model idle, a new call waits at most `maxWaitMs` for others to join; a full batch or a
//   returning caller goes at once.
// - A cohort stays whole: after a run, its callers come back one by one (each filters its logits on
//   the main thread first, about a millisecond a row). A group whose callers are still out waits
//   for them, up to `maxCohortWaitMs`, while complete groups run meanwhile; a caller that is done
//   says so (`finish`) and is not waited for. Starting without a straggler would split the cohort
//   for good (rows of different cache lengths never share a run again), doubling the runs.
//   A call waits only for callers of its own priority or higher: a final does not wait for a
//   partial that happens to be at the same cache length. Lower-priority work also waits for
//   higher-priority callers still out, so a stream's final is not held up behind a run of a
//   partial between two of its steps. So a call waits for at most one run of lower priority: the
//   one already running when it arrived.
// - Within a kind of call, a run takes calls by priority (higher first), then arrival order, up to
//   the batch limit of rows; lower-priority calls of the leader's key ride along in its run (they
//   share its cache length, so they cost the leader little), never past the limit. A call is never
//   split across runs.
import type { Ticket } from './batch-cache.ts';
import type { Call } from './batch-calls.ts';
import type { Device } from './execution.ts';

export interface PolicyLimits {
  maxBatch: number;
  maxEncodeBatch: number;
  maxWaitMs: number;
  maxCohortWaitMs: number;
}

export type DeviceBatchLimits = Pick<PolicyLimits, 'maxBatch' | 'maxEncodeBatch'> & {
  /** Streams' jobs (partials, speculations, finals together) running at once (priority.ts, `laneOf`). */
  streamJobs: number;
};

/**
 * The batch limits of each device, in one place (the model's work queue also runs as many jobs at
 * once as `maxBatch`: loaded-model.ts):
 * - CPU: 16 decoder rows. A step's cost per row falls from 1 to 8 rows and no further on 2 cores
 *   (BENCHMARKS.md, streams), and more rows only make each caller wait longer. One window per
 *   encoder run: a batch of windows costs each window as much as a run alone (measured: the
 *   encoder is compute-bound there), so batching only makes a short request wait behind others.
 *   One stream job at a time: streams' steps practically never share a run there (see `laneOf`).
 * - GPU (CUDA, WebGPU): 128 decoder rows, in the 64-256 a GPU needs before a step costs more than
 *   its launch overheads, and 32 encoder windows: a GPU runs a batch of windows in about the time
 *   of one, so the encoder batches there too (`bench gpu` measures both at 1/8/32 and 1/16/64/256),
 *   and streams' partials and finals run as many at once as the decoder takes rows.
 */
export function deviceBatchLimits(device: Device): DeviceBatchLimits {
  return device === 'cpu' ? { maxBatch: 16, maxEncodeBatch: 1, streamJobs: 1 } : { maxBatch: 128, maxEncodeBatch: 32, streamJobs: 128 };
}

export class DispatchPolicy {
  /** Results handed out whose callers have not come back yet. */
  private readonly awaiting = new Set<Ticket>();

  constructor(private readonly limits: PolicyLimits) {}

  get awaitingCount(): number {
    return this.awaiting.size;
  }

  /** Most rows in one run of `call`'s kind. */
  limit(call: Call): number {
    return call.kind === 'encode' ? this.limits.maxEncodeBatch : this.limits.maxBatch;
  }

  /** A result is handed out: its caller is expected back with a call of `group`. */
  ticket(group: string, priority: number, now = performance.now()): Ticket {
    const t: Ticket = { done: false, group, priority, handedOut: now };
    this.awaiting.add(t);
    return t;
  }

  /** Marks the caller of `ticket` as back (or done); true when it was awaited. */
  link(ticket: Ticket | null): boolean {
    if (!ticket || ticket.done) return false;
    ticket.done = true;
    this.awaiting.delete(ticket);
    return true;
  }

  /** Forgets callers not back within maxCohortWaitMs: their groups stop waiting for them. */
  expire(now: number): void {
    for (const t of this.awaiting) {
      if (now - t.handedOut >= this.limits.maxCohortWaitMs) this.awaiting.delete(t);
    }
  }

  /**
   * Until when `c` must wait for callers still out (0: it need not): those of its own group and
   * priority or higher (so a cohort stays whole) and those of higher priority (a final's next step
   * goes before a partial's work, rather than behind a run of it).
   */
  blockedUntil(c: Call): number {
    let until = 0;
    for (const t of this.awaiting) {
      if (waitsFor(c, t)) until = Math.max(until, t.handedOut + this.limits.maxCohortWaitMs);
    }
    return until;
  }

  /**
   * When the next run may start: at once if an unblocked call has a full batch behind its key, or
   * is a returning caller, or has waited maxWaitMs for company; otherwise at the earliest of those
   * deadlines and the blocked calls' cohort deadlines. Infinity with nothing pending.
   */
  readyAt(pending: readonly Call[], now: number): number {
    const rowsByKey = rowsOfKeys(pending);
    let at = Infinity;
    for (const c of pending) {
      const until = this.blockedUntil(c);
      if (until > 0) at = Math.min(at, until);
      else if (rowsByKey.get(c.key)! >= this.limit(c)) return now;
      else at = Math.min(at, c.linked ? now : c.arrived + this.limits.maxWaitMs);
    }
    return at;
  }

  /**
   * The calls the next run takes, all of one key, led by the first unblocked call in priority, job
   * and arrival order; failing one (a cohort deadline passed), the first in order, whose blockers are
   * then not waited for again.
   */
  choose(pending: readonly Call[], now: number): Call[] {
    this.expire(now);
    const ordered = [...pending].sort((a, b) => b.priority - a.priority || a.order - b.order || a.seq - b.seq);
    const head = ordered.find((c) => this.blockedUntil(c) === 0) ?? ordered[0]!;
    for (const t of this.awaiting) if (waitsFor(head, t)) this.awaiting.delete(t);
    const limit = this.limit(head);
    const chosen: Call[] = [];
    let rows = 0;
    for (const c of ordered) {
      if (c.key !== head.key) continue;
      if (chosen.length > 0 && rows + c.rows > limit) break;
      chosen.push(c);
      rows += c.rows;
    }
    return chosen;
  }
}

/** Whether `c` waits for the caller of `t`: one of its cohort at its priority or higher, or of higher priority. */
function waitsFor(c: Call, t: Ticket): boolean {
  return t.priority > c.priority || (t.group === c.group && t.priority === c.priority);
}

function rowsOfKeys(pending: readonly Call[]): Map<string, number> {
  const rows = new Map<string, number>();
  for (const c of pending) rows.set(c.key, (rows.get(c.key) ?? 0) + c.rows);
  return rows;
}
