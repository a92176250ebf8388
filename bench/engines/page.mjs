// Warm measurement in one page (driven by run.mjs; the smoke test by tests/e2e/engines.mjs):
// load every engine on the same catalogue, check they agree with vitrine's reference
// (1e-4, before any timing), then interleave them — each round runs every engine once,
// in a rotating order — and report median and best of `runs` calls after `warmup`
// rounds, for the head alone (a) and recommend() end to end (b), with the wasm SIMD
// ceilings of this page (vitrine's mul+add and FMA probes).
// Query: ?dir=artifacts/engines/4000/&model=www/models/synthetic-4000.vitrine
//        &engines=vitrine-relaxed,vitrine-plain,ort,ort-int8,tfjs (ort-threads: ORT's
//        default thread count, needs a cross-origin-isolated page; ort-int8: ORT over
//        the int8 item table, checked like an int8 file) &runs=25&warmup=5&smoke=1
//        &int8=1 (an int8 file: vitrine scores it with its int8 kernels, so it is checked
//        against the f32 reference within INT8_TOL and INT8_OVERLAP; the rivals, which
//        run the dequantised weights in f32, still within TOL and the same top-k)
import { ROOT, jsonOf, loadOrt, loadTf, loadVitrine, agreement, refEvents } from './engines.mjs';
import { hasRelaxedSimd } from '../../www/vitrine.js';
import { ceiling, quantile } from '../../www/bench-util.js';

const params = new URLSearchParams(location.search);
const dir = new URL(params.get('dir') || 'artifacts/engines/4000/', ROOT).href;
const modelUrl = new URL(params.get('model') || 'www/models/synthetic-4000.vitrine', ROOT).href;
const smoke = params.get('smoke') === '1';
const runs = smoke ? 1 : Math.max(20, Number(params.get('runs') || 25));
const warmup = smoke ? 0 : Math.max(1, Number(params.get('warmup') || 5));
const wanted = (params.get('engines') || 'vitrine-relaxed,vitrine-plain,ort,ort-int8,tfjs').split(',');
const TOL = 1e-4;
const int8 = params.get('int8') === '1';
// int8 scoring against f32 (README, "At run time"): the top-k scores within 2% (relative,
// of sigmoid scores for vitrine's recommend()), at least 80% of the top-k shared.
const INT8_TOL = 0.02;
const INT8_OVERLAP = 0.8;
const status = document.querySelector('[data-testid="bench-status"]');
try {
  const ref = await jsonOf(`${dir}reference.json`);
  const events = refEvents(ref);
  const engines = [];
  const loadMs = {};
  for (const name of wanted) {
    status.textContent = `loading ${name}…`;
    const t0 = performance.now();
    let e;
    if (name === 'vitrine-relaxed' || name === 'vitrine-plain') {
      const build = name.slice('vitrine-'.length);
      if (build === 'relaxed' && !hasRelaxedSimd()) continue; // not in this browser
      e = await loadVitrine(modelUrl, ref, { build });
    } else if (name === 'ort') e = await loadOrt(dir, ref, { threads: 1 });
    else if (name === 'ort-int8') e = await loadOrt(dir, ref, { threads: 1, int8: true });
    else if (name === 'ort-threads') {
      if (!crossOriginIsolated) throw new Error('ort-threads needs a cross-origin-isolated page (COOP/COEP headers)');
      e = await loadOrt(dir, ref, { threads: 0 });
    } else if (name === 'tfjs') e = await loadTf(dir, ref);
    else throw new Error(`unknown engine ${name}`);
    e.key = name;
    loadMs[name] = performance.now() - t0;
    engines.push(e);
  }
  // Agreement first: a disagreeing engine is an error, nothing is timed.
  const agree = {};
  for (const e of engines) {
    status.textContent = `checking ${e.key}…`;
    const a = await agreement(e, ref, events);
    agree[e.key] = a;
    const bad = [];
    const quantised = (int8 && e.mod) || e.quantised;
    const tol = quantised ? INT8_TOL : TOL;
    if (a.headErr !== undefined && !(a.headErr <= tol)) bad.push(`head logits differ by ${a.headErr}`);
    if (quantised ? !(a.topOverlap >= INT8_OVERLAP) : !a.topSame) bad.push(`top-k items differ (shared ${a.topOverlap})`);
    if (quantised ? !(a.topSharedErr <= tol) : !(a.topErr <= tol)) bad.push(`top-k scores differ by ${quantised ? a.topSharedErr : a.topErr}`);
    if (bad.length) throw new Error(`${e.key} disagrees with vitrine's reference: ${bad.join('; ')}`);
  }
  const u = Float32Array.from(ref.u);
  const t = Object.fromEntries(engines.map((e) => [e.key, { head: [], recommend: [] }]));
  for (let r = 0; r < warmup + runs; r++) {
    status.textContent = `round ${r + 1}/${warmup + runs}…`;
    for (let j = 0; j < engines.length; j++) {
      const e = engines[(r + j) % engines.length];
      let t0 = performance.now();
      await e.recommend(events);
      const rec = performance.now() - t0;
      let head = e.lastHeadMs;
      if (e.head) {
        t0 = performance.now();
        await e.head(u);
        head = performance.now() - t0;
      }
      if (r >= warmup) { t[e.key].recommend.push(rec); t[e.key].head.push(head); }
    }
  }
  let peaks = null;
  const vit = engines.find((e) => e.mod);
  if (vit && !smoke) {
    status.textContent = 'measuring the SIMD ceilings…';
    peaks = { mulAddGflops: ceiling(vit.mod, false), fmaGflops: vit.build.simd === 'relaxed-simd' ? ceiling(vit.mod, true) : null };
  }
  // Head FLOPs per item: d·(h+1) for the first layer (vitrine's count; the exported
  // graphs run d·(h+2)) and the further layers.
  const cfg = ref.config, widths = [cfg.dim, ...cfg.mlp_hidden];
  let macs = cfg.dim * (cfg.mlp_hidden[0] + 1);
  for (let i = 1; i < cfg.mlp_hidden.length; i++) macs += widths[i] * widths[i + 1];
  macs += cfg.mlp_hidden[cfg.mlp_hidden.length - 1];
  const flops = 2 * macs * ref.nItems;
  const stat = (xs) => ({ medianMs: quantile(xs, 0.5), bestMs: Math.min(...xs), p95Ms: quantile(xs, 0.95), n: xs.length });
  const results = engines.map((e) => ({
    engine: e.key, name: e.name, version: e.version, quantised: Boolean((int8 && e.mod) || e.quantised), loadMs: loadMs[e.key], agreement: agree[e.key],
    head: { ...stat(t[e.key].head), gflops: flops / quantile(t[e.key].head, 0.5) / 1e6, timedBy: e.head ? 'js' : 'vitrine stats().scoreMs' },
    recommend: stat(t[e.key].recommend),
    wasmMemoryBytes: e.wasmBytes ? e.wasmBytes() : null,
    dotForm: e.dotForm ?? null,
  }));
  document.querySelector('[data-testid="bench-result"]').textContent = JSON.stringify({
    nItems: ref.nItems, k: ref.k, runs, warmup, crossOriginIsolated, hardwareConcurrency: navigator.hardwareConcurrency,
    userAgent: navigator.userAgent, headFlops: flops, peaks, results,
  }, null, 2);
  for (const e of engines) await e.close();
  status.textContent = 'done';
  document.body.dataset.state = 'done';
} catch (e) {
  console.error(e);
  status.textContent = `failed: ${e?.message ?? e}`;
  document.body.dataset.state = 'error';
}
