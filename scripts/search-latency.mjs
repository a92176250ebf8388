// Runs www/search-bench.html in headless Chromium (Playwright, Debian's /usr/bin/chromium)
// for each model URL given on the command line (one fresh page per wasm build) and prints
// a Markdown table, then the JSON of every run.
// Usage: BASE_URL=http://127.0.0.1:PORT/ node scripts/search-latency.mjs models/a.vitrine ...
// Env: BUILDS (default relaxed,plain), RUNS (timed calls per query and mode; default 10),
// SET (retail|synthetic; default from the model's name), CHROMIUM.
import { chromium } from 'playwright-core';

const base = process.env.BASE_URL;
if (!base) throw new Error('BASE_URL is not set');
const models = process.argv.slice(2);
if (!models.length) throw new Error('no model URL given');
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
});
const all = [];
try {
  for (const model of models) {
    const set = process.env.SET || (/synthetic/.test(model) ? 'synthetic' : 'retail');
    for (const build of (process.env.BUILDS || 'relaxed,plain').split(',')) {
      const page = await browser.newPage();
      const errors = [];
      page.on('pageerror', (e) => errors.push(String(e)));
      await page.goto(`${base}www/search-bench.html?model=${encodeURIComponent(model)}&set=${set}&runs=${process.env.RUNS || 10}&builds=${build}`);
      await page.waitForFunction(() => document.body.dataset.state === 'done' || document.body.dataset.state === 'error', null, { timeout: 1800000 });
      const state = await page.evaluate(() => document.body.dataset.state);
      if (state !== 'done') {
        throw new Error(`search bench failed for ${model} (${build}): ${await page.textContent('[data-testid="bench-status"]')} ${errors.join('; ')}`);
      }
      const r = JSON.parse(await page.textContent('[data-testid="bench-result"]'));
      if (r.results.length) all.push(r); // empty: this browser lacks relaxed SIMD
      await page.close();
    }
  }
} finally {
  await browser.close();
}
const f = (x) => x.toFixed(2);
console.log('| model | items | build | mode | queries × calls | median ms | p95 ms | best ms | slowest query (median ms) | median / recommend() median |');
console.log('|---|---:|---|---|---:|---:|---:|---:|---|---:|');
for (const r of all) {
  for (const x of r.results) {
    for (const mode of ['text', 'personal', 'recommend']) {
      const s = x[mode];
      const slow = mode === 'recommend' ? '–' : `"${x.slowestQuery[mode].query}" (${f(x.slowestQuery[mode][mode].medianMs)})`;
      const calls = mode === 'recommend' ? `${x.queries} × 1` : `${x.queries} × ${x.runs}`;
      const label = { text: 'search, text only', personal: 'search, personalised', recommend: 'recommend({k: 20})' }[mode];
      console.log(`| ${r.model} | ${x.items} | ${x.build} | ${label} | ${calls} | ${f(s.medianMs)} | ${f(s.p95Ms)} | ${f(s.bestMs)} | ${slow} | ${f(s.medianMs / x.recommend.medianMs)} |`);
    }
  }
}
console.log('\nWhere the time goes (whole queries, median ms of each variant):\n');
console.log('| model | build | query | matches | text k=10 | text, no facets | text k=1, no facets | personalised k=10 | personalised k=1, no facets | result JSON bytes |');
console.log('|---|---|---|---:|---:|---:|---:|---:|---:|---:|');
for (const r of all) {
  for (const x of r.results) {
    for (const b of x.breakdown) {
      console.log(`| ${r.model} | ${x.build} | ${b.query} | ${b.total} | ${f(b.text)} | ${f(b.textNoFacets)} | ${f(b.textK1NoFacets)} | ${f(b.personal)} | ${f(b.personalK1NoFacets)} | ${b.resultJsonBytes} |`);
    }
  }
}
console.log(JSON.stringify(all, null, 2));
