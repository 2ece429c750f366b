// Shared by the fuzz tests: how many inputs each target gets (10^4 in CI; EARSHOT_FUZZ_RUNS for a
// longer run, e.g. 100000), the seed (EARSHOT_FUZZ_SEED replays a failure that fast-check
// reported), and a mutator that damages real inputs the way broken clients and files do.
import fc from 'fast-check';

export const FUZZ_RUNS = Number(process.env.EARSHOT_FUZZ_RUNS ?? 10_000);

/** fast-check parameters for one target: `share` scales the run count for costly targets. */
export function fuzzParams(share = 1): fc.Parameters<unknown> {
  const seed = process.env.EARSHOT_FUZZ_SEED;
  return {
    numRuns: Math.max(1, Math.round(FUZZ_RUNS * share)),
    ...(seed !== undefined ? { seed: Number(seed) } : {}),
    endOnFailure: true,
  };
}

/** Little-endian values a header field is most likely to choke on. */
const EDGE_U32 = [0, 1, 2, 0x7f, 0x80, 0xff, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xffffffff, 44, 16000, 48000];

type Mutation =
  | { op: 'set'; at: number; value: number }
  | { op: 'u32'; at: number; value: number }
  | { op: 'truncate'; at: number }
  | { op: 'insert'; at: number; bytes: Uint8Array }
  | { op: 'delete'; at: number; count: number }
  | { op: 'duplicate'; at: number; count: number };

const position = fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true });

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ op: fc.constant('set' as const), at: position, value: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ op: fc.constant('u32' as const), at: position, value: fc.constantFrom(...EDGE_U32) }),
  fc.record({ op: fc.constant('truncate' as const), at: position }),
  fc.record({ op: fc.constant('insert' as const), at: position, bytes: fc.uint8Array({ minLength: 1, maxLength: 64 }) }),
  fc.record({ op: fc.constant('delete' as const), at: position, count: fc.integer({ min: 1, max: 64 }) }),
  fc.record({ op: fc.constant('duplicate' as const), at: position, count: fc.integer({ min: 1, max: 256 }) }),
);

function apply(bytes: Uint8Array, m: Mutation): Uint8Array {
  const at = Math.floor(m.at * bytes.length);
  const b = Buffer.from(bytes);
  switch (m.op) {
    case 'set':
      if (at < b.length) b[at] = m.value;
      return b;
    case 'u32':
      if (at + 4 <= b.length) b.writeUInt32LE(m.value, at);
      return b;
    case 'truncate':
      return b.subarray(0, at);
    case 'insert':
      return Buffer.concat([b.subarray(0, at), m.bytes, b.subarray(at)]);
    case 'delete':
      return Buffer.concat([b.subarray(0, at), b.subarray(at + m.count)]);
    case 'duplicate':
      return Buffer.concat([b.subarray(0, at + m.count), b.subarray(at)]);
  }
}

/** `base` damaged by one to `max` mutations. */
export function mutated(base: Uint8Array, max = 4): fc.Arbitrary<Uint8Array> {
  return fc.array(mutation, { minLength: 1, maxLength: max }).map((ms) => ms.reduce(apply, base));
}

/** Milliseconds `f` took, with its result or the error it threw. */
export async function timed<T>(f: () => T | Promise<T>): Promise<{ ms: number; value?: T; error?: unknown }> {
  const t0 = performance.now();
  try {
    const value = await f();
    return { ms: performance.now() - t0, value };
  } catch (error) {
    return { ms: performance.now() - t0, error };
  }
}
