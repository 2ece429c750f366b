// What runs next, for the BatchScheduler (scheduler.ts), which holds the waiting calls and runs
// them: the cohort bookkeeping (results handed out whose callers are still away), when the next
// run may start, and which calls it takes. No model and no timers here: every decision is a
// function of the waiting calls and the clock, so it can be tested on its own.
//
// Rules, and why:
// - With the model idle, a new call waits at most `maxWaitMs` for others to join.
// - A cohort stays whole: after a run, its callers come back one by one (each filters its logits on
//   the main thread first, about a millisecond a row). A group whose callers are still out waits
//   for them, up to `maxCohortWaitMs`, while complete groups run meanwhile; a caller that is done
//   says so (`finish`) and is not waited for. Starting without a straggler would split the cohort
//   for good (rows of different cache lengths never share a run again), doubling the runs.
//   Lower-priority work also waits for higher-priority callers still out, so a stream's final is
//   not held up behind a run of a partial between two of its steps.
// - Within a kind of call, a run takes calls by priority (higher first), then arrival order, up to
//   the batch limit of rows; the group of the first call in that order runs next, so work of all
//   lengths is served in turn. A call is never split across runs.
import type { Ticket } from './batch-cache.ts';
import type { Call } from './batch-calls.ts';

export interface PolicyLimits {
  maxBatch: number;
  maxEncodeBatch: number;
  maxWaitMs: number;
  maxCohortWaitMs: number;
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
   * Until when `c` must wait for callers still out (0: it need not): those of its own group (so a
   * cohort stays whole) and those of higher priority (a final's next step goes before a partial's
   * work, rather than behind a run of it).
   */
  blockedUntil(c: Call): number {
    let until = 0;
    for (const t of this.awaiting) {
      if (t.group === c.group || t.priority > c.priority) until = Math.max(until, t.handedOut + this.limits.maxCohortWaitMs);
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
   * The calls the next run takes, all of one key: an unblocked call with a full key first, then the
   * first unblocked call; failing both (a cohort deadline passed), the first in order, whose
   * blockers are then not waited for again.
   */
  choose(pending: readonly Call[], now: number): Call[] {
    this.expire(now);
    const ordered = [...pending].sort((a, b) => b.priority - a.priority || a.seq - b.seq);
    const rowsByKey = rowsOfKeys(pending);
    const free = ordered.filter((c) => this.blockedUntil(c) === 0);
    const head = free.find((c) => rowsByKey.get(c.key)! >= this.limit(c)) ?? free[0] ?? ordered[0]!;
    for (const t of this.awaiting) if (t.group === head.group || t.priority > head.priority) this.awaiting.delete(t);
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

function rowsOfKeys(pending: readonly Call[]): Map<string, number> {
  const rows = new Map<string, number>();
  for (const c of pending) rows.set(c.key, (rows.get(c.key) ?? 0) + c.rows);
  return rows;
}
