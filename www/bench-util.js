// Helpers shared by the benchmark pages (www/bench.js, bench/engines/page.mjs).

/** The `p` quantile of `xs` (nearest rank, no interpolation). */
export const quantile = (xs, p) => xs.slice().sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))];

/** The SIMD ceiling of vitrine module `mod` in GFLOP/s: best of 7 timed `peakProbe`
 * calls (mul+add, or fused multiply-add with `fused`) after one warm-up call. */
export function ceiling(mod, fused) {
  mod.peakProbe(1000, fused);
  let best = 0;
  for (let i = 0; i < 7; i++) {
    const t0 = performance.now();
    const [, flops] = mod.peakProbe(2000000, fused);
    best = Math.max(best, flops / (performance.now() - t0) / 1e6);
  }
  return best;
}
