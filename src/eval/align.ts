// Minimum edit-distance alignment of a hypothesis against a reference (Levenshtein over units:
// words for WER, characters for CER), with the substitutions, deletions and insertions counted on
// one optimal path. Hand-written because it is the core of `earshot eval` and small; the path is
// chosen deterministically (match or substitution first, then deletion, then insertion) so the
// S/D/I split of equal-cost alignments is stable across runs.
import { EarshotError } from '../errors.ts';

export type AlignOp = 'equal' | 'substitute' | 'delete' | 'insert';

export interface AlignStep {
  op: AlignOp;
  /** The reference unit (absent for an insertion). */
  ref?: string;
  /** The hypothesis unit (absent for a deletion). */
  hyp?: string;
}

export interface EditCounts {
  hits: number;
  substitutions: number;
  deletions: number;
  insertions: number;
}

export interface Alignment extends EditCounts {
  steps: AlignStep[];
}

/** Cells of the direction table above which an alignment is refused (about 200 MB). */
const MAX_CELLS = 200_000_000;

const DIAG = 0;
const UP = 1; // deletion: a reference unit with no hypothesis unit
const LEFT = 2; // insertion: a hypothesis unit with no reference unit

export function align(ref: readonly string[], hyp: readonly string[]): Alignment {
  const n = ref.length;
  const m = hyp.length;
  if ((n + 1) * (m + 1) > MAX_CELLS) {
    throw new EarshotError('invalid_argument', 'too_long_to_align', `cannot align ${n} reference units against ${m} hypothesis units: too long`);
  }
  const dir = new Uint8Array((n + 1) * (m + 1));
  let prev = new Uint32Array(m + 1);
  let cur = new Uint32Array(m + 1);
  for (let j = 0; j <= m; j++) {
    prev[j] = j;
    dir[j] = LEFT;
  }
  for (let i = 1; i <= n; i++) {
    cur[0] = i;
    dir[i * (m + 1)] = UP;
    const r = ref[i - 1];
    for (let j = 1; j <= m; j++) {
      let best = prev[j - 1]! + (r === hyp[j - 1] ? 0 : 1);
      let d = DIAG;
      const del = prev[j]! + 1;
      if (del < best) {
        best = del;
        d = UP;
      }
      const ins = cur[j - 1]! + 1;
      if (ins < best) {
        best = ins;
        d = LEFT;
      }
      cur[j] = best;
      dir[i * (m + 1) + j] = d;
    }
    [prev, cur] = [cur, prev];
  }

  const steps: AlignStep[] = [];
  const counts: EditCounts = { hits: 0, substitutions: 0, deletions: 0, insertions: 0 };
  let i = n;
  let j = m;
  while (i > 0 || j > 0) {
    const d = i === 0 ? LEFT : j === 0 ? UP : dir[i * (m + 1) + j];
    if (d === DIAG) {
      const equal = ref[i - 1] === hyp[j - 1];
      steps.push({ op: equal ? 'equal' : 'substitute', ref: ref[i - 1]!, hyp: hyp[j - 1]! });
      if (equal) counts.hits++;
      else counts.substitutions++;
      i--;
      j--;
    } else if (d === UP) {
      steps.push({ op: 'delete', ref: ref[i - 1]! });
      counts.deletions++;
      i--;
    } else {
      steps.push({ op: 'insert', hyp: hyp[j - 1]! });
      counts.insertions++;
      j--;
    }
  }
  steps.reverse();
  return { ...counts, steps };
}
