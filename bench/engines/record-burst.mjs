// Usage: node bench/engines/record-burst.mjs MODEL_FILE [ROUNDS]
// What recording costs through www/vitrine.js's load(), in headless Chromium
// (/usr/bin/chromium), worker and main-thread modes, a fresh browser context each: 20
// `record()` calls one after the other (each awaited), then a burst of 20 issued at once
// (`Promise.all`, as a page recording several events does), and five empty
// `navigator.locks.request` calls for scale. Prints each mode's milliseconds per
// awaited call, the burst's total and the bare lock round trips. MODEL_FILE relative to
// the repository root (e.g. www/models/synthetic-4000-int8.vitrine). Needs playwright-core
// (npm install at the repository root).
import { join, resolve } from 'path';
import { launchChromium, serveFiles } from './serve.mjs';
const [model, rounds = '1'] = process.argv.slice(2);
if (!model) {
  console.error('usage: node bench/engines/record-burst.mjs MODEL_FILE [ROUNDS]');
  process.exit(2);
}
const root = resolve(new URL('../..', import.meta.url).pathname);
const server = await serveFiles((url) => join(root, url));
const browser = await launchChromium();
for (let round = 0; round < +rounds; round++) {
  for (const worker of [false, true]) {
    const ctx = await browser.newContext();
    const page = await ctx.newPage();
    await page.goto(server.base + '/');
    const r = await page.evaluate(async ([worker, model]) => {
      const { load } = await import('/www/vitrine.js');
      const v = await load(model, { worker, namespace: 'record-burst' });
      const ids = v.catalog.ids;
      const now = Date.now() / 1000;
      const each = [];
      for (let k = 0; k < 20; k++) {
        const t = performance.now();
        await v.record({ item: ids[k * 13], type: 'view', at: now - 1000 + k * 30 });
        each.push(+(performance.now() - t).toFixed(1));
      }
      await v.clearHistory();
      const t = performance.now();
      await Promise.all(Array.from({ length: 20 }, (_, k) => v.record({ item: ids[k * 17], type: 'view', at: now - 1000 + k * 30 })));
      const burst = +(performance.now() - t).toFixed(1);
      const locks = [];
      for (let k = 0; k < 5; k++) {
        const t0 = performance.now();
        await navigator.locks.request('record-burst-probe', async () => {});
        locks.push(+(performance.now() - t0).toFixed(2));
      }
      v.dispose();
      return { each, burst, locks };
    }, [worker, '/' + model]);
    console.log(worker ? 'worker' : 'main  ', JSON.stringify(r));
    await ctx.close();
  }
}
await browser.close();
server.close();
