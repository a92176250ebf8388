// Runs www/bench.html in headless Chromium (Playwright, Debian's /usr/bin/chromium) for each
// model URL given on the command line and prints the results as a markdown table and JSON.
// Usage: BASE_URL=http://127.0.0.1:PORT/ node scripts/browser-bench.mjs models/a.vitrine ...
import { chromium } from 'playwright-core';

const base = process.env.BASE_URL;
if (!base) throw new Error('BASE_URL is not set');
const models = process.argv.slice(2);
const backends = process.env.BACKENDS || 'simd,scalar';
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
});
const all = [];
try {
  for (const model of models) {
    const page = await browser.newPage();
    const runs = process.env.RUNS || '30';
    await page.goto(`${base}www/bench.html?model=${encodeURIComponent(model)}&runs=${runs}&backends=${backends}`);
    await page.waitForFunction(() => document.body.dataset.state === 'done' || document.body.dataset.state === 'error', null, { timeout: 600000 });
    const state = await page.evaluate(() => document.body.dataset.state);
    const text = await page.textContent('[data-testid="bench-result"]');
    if (state !== 'done') throw new Error(`bench failed for ${model}: ${await page.textContent('[data-testid="bench-status"]')}`);
    const r = JSON.parse(text);
    all.push(r);
    await page.close();
  }
} finally {
  await browser.close();
}
console.log('| model | items | backend | median recommend() ms | median scoring ms | head GFLOP/s | measured peak GFLOP/s | % of peak |');
console.log('|---|---:|---|---:|---:|---:|---:|---:|');
for (const r of all) {
  for (const x of r.results) {
    console.log(`| ${r.model} | ${x.items} | ${x.active} | ${x.medianTotalMs.toFixed(2)} | ${x.medianScoreMs.toFixed(2)} | ${x.headGflops.toFixed(1)} | ${r.peakGflops.toFixed(1)} | ${x.percentOfPeak.toFixed(0)}% |`);
  }
}
console.log(JSON.stringify(all, null, 2));
