// engines.mjs — the engine comparison harness cannot rot (run by scripts/e2e.sh): on a tiny
// synthetic catalogue, bench/engines/page.html loads vitrine (both wasm builds), ONNX
// Runtime Web (the graphs of `vitrine export-onnx`, f32 and over the int8 item table) and
// TF.js (the same layers from the exported tensors) and checks each against vitrine's
// reference — the head's logits and the whole model's top-k, 1e-4 (int8: 2%, 80% of the
// top-k shared) — with one call each. Exit 1 with the page's message on
// any disagreement or load failure.
// Env: BASE_URL (the served repository), SMOKE_DIR (default artifacts/engines-smoke/),
// SMOKE_MODEL (default www/models/engines-smoke.vitrine), CHROMIUM.
import fs from 'node:fs';
import { chromium } from 'playwright-core';
import { readCatalog } from './catalog.mjs';

const base = process.env.BASE_URL;
if (!base) throw new Error('BASE_URL is not set');
const dir = process.env.SMOKE_DIR || 'artifacts/engines-smoke/';
const model = process.env.SMOKE_MODEL || 'www/models/engines-smoke.vitrine';
const engines = ['vitrine-relaxed', 'vitrine-plain', 'ort', 'ort-int8', 'tfjs'];
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
});
let failed = null;
try {
  // The reference history names its items by index and by store id (the cold page records
  // them by id, as a store would): the ids are the catalogue's.
  const ref = JSON.parse(fs.readFileSync(`${dir}reference.json`, 'utf8'));
  const { items } = readCatalog(model);
  const wrong = ref.history.filter((e) => e.id !== items[e.index]?.id);
  if (!ref.history.length || wrong.length) throw new Error(`reference history ids: ${JSON.stringify(wrong.slice(0, 3))}`);
  const page = await browser.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(`${base}bench/engines/page.html?smoke=1&dir=${dir}&model=${model}&engines=${engines.join(',')}`);
  await page.waitForFunction(() => ['done', 'error'].includes(document.body.dataset.state), null, { timeout: 120000 });
  const status = await page.textContent('[data-testid="bench-status"]');
  if (status !== 'done') throw new Error(`engine smoke page: ${status}${errors.length ? ` (${errors.join('; ')})` : ''}`);
  const r = JSON.parse(await page.textContent('[data-testid="bench-result"]'));
  const seen = r.results.map((x) => x.engine);
  // The relaxed build is skipped only where the browser lacks relaxed SIMD (Chromium has it).
  for (const e of engines) if (!seen.includes(e)) throw new Error(`engine ${e} did not run (ran: ${seen.join(', ')})`);
  for (const x of r.results) {
    const a = x.agreement;
    // ORT over the int8 item table (the only quantised engine on this f32 file): within
    // the page's int8 tolerance, 2% and 80% of the top-k; the others to 1e-4, the same top-k.
    if (x.quantised !== (x.engine === 'ort-int8')) throw new Error(`${x.engine}: quantised = ${x.quantised}`);
    const ok = x.quantised
      ? a.topOverlap >= 0.8 && a.topSharedErr <= 0.02 && a.headErr <= 0.02
      : a.topSame && a.topErr <= 1e-4 && (a.headErr === undefined || a.headErr <= 1e-4);
    if (!ok) throw new Error(`${x.engine} disagrees: ${JSON.stringify(a)}`);
  }
  console.log(`engines agree on ${r.nItems} items: ${r.results.map((x) => `${x.name} ${x.version} (head ${x.agreement.headErr?.toExponential(1) ?? '–'}, top-${r.k} ${x.agreement.topErr.toExponential(1)})`).join('; ')}`);
} catch (e) {
  failed = e;
} finally {
  await browser.close();
}
if (failed) {
  console.error(`FAIL engines: ${failed.message}`);
  process.exit(1);
}
