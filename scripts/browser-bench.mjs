// Runs www/bench.html in headless Chromium (Playwright, Debian's /usr/bin/chromium) for each
// model URL given on the command line and prints the results as a markdown table and JSON.
// Usage: BASE_URL=http://127.0.0.1:PORT/ node scripts/browser-bench.mjs models/a.vitrine ...
// Env: BACKENDS (default simd,scalar; catalogues over 200,000 items run simd only),
// BUILDS (default relaxed,plain), RUNS (default 30; 10 over 200,000 items).
import { chromium } from 'playwright-core';

const base = process.env.BASE_URL;
if (!base) throw new Error('BASE_URL is not set');
const models = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
});
const all = [];
try {
  for (const model of models) {
    const huge = /synthetic-(\d+)/.exec(model) && Number(/synthetic-(\d+)/.exec(model)[1]) > 200000;
    const backends = process.env.BACKENDS || (huge ? 'simd' : 'simd,scalar');
    const runs = process.env.RUNS || (huge ? '10' : '30');
    // One fresh page per build, so that neither build runs in memory the other left
    // behind (at 1,000,000 items the first instance of a page ran measurably slower).
    for (const build of (process.env.BUILDS || 'relaxed,plain').split(',')) {
      const page = await browser.newPage();
      await page.goto(`${base}www/bench.html?model=${encodeURIComponent(model)}&runs=${runs}&backends=${backends}&builds=${build}`);
      await page.waitForFunction(() => document.body.dataset.state === 'done' || document.body.dataset.state === 'error', null, { timeout: 1800000 });
      const state = await page.evaluate(() => document.body.dataset.state);
      if (state !== 'done') throw new Error(`bench failed for ${model} (${build}): ${await page.textContent('[data-testid="bench-status"]')}`);
      const r = JSON.parse(await page.textContent('[data-testid="bench-result"]'));
      if (r.results.length) all.push(r); // an empty result: the browser lacks relaxed SIMD
      await page.close();
    }
  }
} finally {
  await browser.close();
}
// The weights' storage: from the file name (synthetic-N-int8.vitrine) or the page's report.
const weights = (r) => r.quantization || (/-(f32|f16|int8)\.vitrine/.exec(r.model) || [, 'f32'])[1];
console.log('| model | weights | items | build | backend | median recommend() ms | median scoring ms | best scoring ms | head GFLOP/s (median / best) | mul+add ceiling | FMA ceiling | wasm memory MiB |');
console.log('|---|---|---:|---|---|---:|---:|---:|---:|---:|---:|---:|');
for (const r of all) {
  for (const x of r.results) {
    const fma = r.peakFmaGflops == null ? '–' : `${r.peakFmaGflops.toFixed(1)}`;
    console.log(`| ${r.model} | ${weights(r)} | ${x.items} | ${x.build} | ${x.active} | ${x.medianTotalMs.toFixed(2)} | ${x.medianScoreMs.toFixed(2)} | ${x.minScoreMs.toFixed(2)} | ${x.headGflops.toFixed(1)} / ${x.bestHeadGflops.toFixed(1)} | ${r.peakMulAddGflops.toFixed(1)} | ${fma} | ${(x.wasmMemoryBytes / (1 << 20)).toFixed(0)} |`);
  }
}
console.log(JSON.stringify(all, null, 2));
