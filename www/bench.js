// The browser benchmark page (www/bench.html), driven by scripts/browser-bench.mjs.
import { fetchBytes, hasRelaxedSimd } from './vitrine.js';
import { ceiling, quantile } from './bench-util.js';
const params = new URLSearchParams(location.search);
const modelUrl = params.get('model') || 'models/online-retail.vitrine';
const runs = Math.max(5, Number(params.get('runs') || 50));
const backends = (params.get('backends') || 'webgpu,simd,scalar').split(',');
const builds = (params.get('builds') || 'relaxed,plain').split(',')
  .filter((b) => b !== 'relaxed' || hasRelaxedSimd());
const pkgs = { plain: '../pkg/vitrine.js', relaxed: '../pkg/relaxed/vitrine.js' };
const status = document.querySelector('[data-testid="bench-status"]');
const mib = (b) => b / (1 << 20);
try {
  const bytes = await fetchBytes(modelUrl);
  const results = [];
  const peaks = { mulAdd: 0, fma: null };
  for (const build of builds) {
    if (!pkgs[build]) throw new Error(`unknown build ${build}`);
    const mod = await import(new URL(pkgs[build], import.meta.url).href);
    const wasm = await mod.default();
    const info = mod.buildInfo();
    peaks.mulAdd = Math.max(peaks.mulAdd, ceiling(mod, false));
    if (info.simd === 'relaxed-simd') peaks.fma = Math.max(peaks.fma ?? 0, ceiling(mod, true));
    for (const backend of backends) {
      status.textContent = `running ${build} / ${backend}…`;
      const rec = await mod.Recommender.fromBytes(bytes, { backend, namespace: `bench-${build}-${backend}`, storage: 'memory' });
      const ids = rec.catalog().ids;
      const now = Date.now() / 1000;
      for (let i = 0; i < 20; i++) rec.record({ item: ids[(i * 7919) % ids.length], type: 'view', at: now - 3600 * (20 - i) });
      for (let i = 0; i < 3; i++) await rec.recommend({ k: 20 });
      const total = [], score = [], encode = [];
      for (let i = 0; i < runs; i++) {
        await rec.recommend({ k: 20 });
        const s = rec.stats();
        total.push(s.totalMs); score.push(s.scoreMs); encode.push(s.encodeMs);
      }
      const mi = rec.modelInfo();
      const widths = [mi.dim, ...mi.mlpHidden];
      let macs = mi.dim * (mi.mlpHidden[0] + 1);
      for (let i = 1; i < mi.mlpHidden.length; i++) macs += widths[i] * widths[i + 1];
      macs += mi.mlpHidden[mi.mlpHidden.length - 1];
      const headGflops = (2 * macs * rec.nItems) / quantile(score, 0.5) / 1e6;
      const row = { build, simd: info.simd, requested: backend, active: rec.backend, adapter: rec.adapterInfo ?? null,
        items: rec.nItems, runs, medianTotalMs: quantile(total, 0.5), p95TotalMs: quantile(total, 0.95), medianScoreMs: quantile(score, 0.5),
        medianEncodeMs: quantile(encode, 0.5), minScoreMs: Math.min(...score), headGflops,
        bestHeadGflops: (2 * macs * rec.nItems) / Math.min(...score) / 1e6, wasmMemoryBytes: wasm.memory.buffer.byteLength };
      results.push(row);
      rec.free();
    }
  }
  const tbody = document.querySelector('[data-testid="bench-table"] tbody');
  for (const row of results) {
    row.percentOfMulAdd = 100 * row.headGflops / peaks.mulAdd;
    row.percentOfFma = peaks.fma ? 100 * row.headGflops / peaks.fma : null;
    const tr = document.createElement('tr');
    for (const v of [row.build, row.active, row.medianTotalMs.toFixed(2), row.p95TotalMs.toFixed(2), row.medianScoreMs.toFixed(2), row.minScoreMs.toFixed(2),
      row.medianEncodeMs.toFixed(2), row.items, row.headGflops.toFixed(1), row.bestHeadGflops.toFixed(1), row.percentOfMulAdd.toFixed(0) + '%',
      row.percentOfFma == null ? '–' : row.percentOfFma.toFixed(0) + '%', mib(row.wasmMemoryBytes).toFixed(0)]) {
      const td = document.createElement('td'); td.textContent = v; tr.append(td);
    }
    tbody.append(tr);
  }
  document.querySelector('[data-testid="bench-peak"]').textContent =
    `ceilings on this thread: mul+add ${peaks.mulAdd.toFixed(1)} GFLOP/s` + (peaks.fma ? `, FMA ${peaks.fma.toFixed(1)} GFLOP/s` : ', FMA – (no relaxed SIMD)');
  document.querySelector('[data-testid="bench-result"]').textContent = JSON.stringify({ model: modelUrl, weightFileBytes: bytes.length,
    userAgent: navigator.userAgent, relaxedSimd: hasRelaxedSimd(), peakMulAddGflops: peaks.mulAdd, peakFmaGflops: peaks.fma, results }, null, 2);
  status.textContent = 'done';
  document.body.dataset.state = 'done';
} catch (e) {
  status.textContent = `failed: ${e.message}`;
  document.body.dataset.state = 'error';
}
