// Deterministic log-mel-like encoder input for engine tests: one 30 s window, different for every seed.
export function features(nMels: number, seed: number): Float32Array {
  const f = new Float32Array(nMels * 3000);
  for (let i = 0; i < f.length; i++) f[i] = Math.sin(i * (0.37 + seed * 0.011) + seed) * 0.6 - 0.1 + 0.05 * Math.cos(i * 0.003 * (seed + 1));
  return f;
}
