// Usage: node bench/engines/requests-chromium.mjs MODEL_FILE PKG_DIR [PKG_DIR...]
// recommend() by kind of request in headless Chromium (/usr/bin/chromium), one page per
// package, the packages in turns (ROUNDS, default 2): after one load, the empty-history
// fallback, then with 10 viewed items recorded a "similar items" request (a context item)
// and a plain personal request. Prints each package's medians of the warm calls (the
// first call of each kind is warm-up): the request's milliseconds and stats().scoreMs,
// the scoring head's share, and the int8 multiply form the relaxed build's scorer chose
// (stats().dotForm). PRE (default 0) untimed personal requests first, after the history
// is recorded: the scorer times its int8 multiply forms on its first int8 requests (about
// 14), so PRE=16 measures the chosen form alone. Needs playwright-core (npm install at
// the repository root).
import { basename, join, resolve } from 'path';
import { launchChromium, serveFiles } from './serve.mjs';
const [model, ...pkgs] = process.argv.slice(2);
if (!model || pkgs.length === 0) {
  console.error('usage: node bench/engines/requests-chromium.mjs MODEL_FILE PKG_DIR [PKG_DIR...]');
  process.exit(2);
}
const rounds = +(process.env.ROUNDS || 2);
const pre = +(process.env.PRE || 0);
const server = await serveFiles((url) => {
  const m = url.match(/^\/pkg(\d+)\/(.+)$/);
  if (url === '/model') return resolve(model);
  return m && pkgs[+m[1]] ? join(resolve(pkgs[+m[1]]), basename(m[2])) : '';
});
const base = server.base;
const browser = await launchChromium();
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[s.length >> 1]; };
const results = pkgs.map(() => []);
for (let round = 0; round < rounds; round++) {
  for (let p = 0; p < pkgs.length; p++) {
    const tab = await browser.newPage();
    tab.on('pageerror', (e) => console.error(`page error (${pkgs[p]}): ${e.message}`));
    tab.on('console', (m) => m.type() === 'error' && console.error(`console (${pkgs[p]}): ${m.text()}`));
    await tab.goto(base + '/');
    const out = await tab.evaluate(async ([pkgUrl, pre]) => {
      const mod = await import(pkgUrl + '/vitrine.js');
      await mod.default({ module_or_path: pkgUrl + '/vitrine_bg.wasm' });
      const bytes = new Uint8Array(await (await fetch('/model')).arrayBuffer());
      const r = await mod.Recommender.fromBytes(bytes, { backend: 'simd', storage: 'memory', namespace: 'requests' });
      const time = async (calls, options) => {
        const ms = [], score = [];
        for (let i = 0; i < calls; i++) {
          const t = performance.now();
          await r.recommend(options(i));
          ms.push(performance.now() - t);
          score.push(r.stats().scoreMs);
        }
        return { ms: ms.slice(1), score: score.slice(1) };
      };
      const fallback = await time(6, () => ({ k: 20 }));
      const ids = r.catalog().ids;
      for (let i = 0; i < 10; i++) r.record({ item: ids[(i * 7919) % ids.length], type: 'view' });
      for (let i = 0; i < pre; i++) await r.recommend({ k: 20 });
      const context = await time(6, (i) => ({ k: 20, context: ids[i * 31] }));
      const personal = await time(6, () => ({ k: 20 }));
      return { fallback, context, personal, dotForm: r.stats().dotForm };
    }, [`${base}/pkg${p}`, pre]);
    results[p].push(out);
    await tab.close();
  }
}
await browser.close();
server.close();
for (let p = 0; p < pkgs.length; p++) {
  const row = { pkg: pkgs[p], dotForm: [...new Set(results[p].map((r) => r.dotForm ?? 'none'))].join('/') };
  for (const kind of ['fallback', 'context', 'personal']) {
    const ms = results[p].flatMap((r) => r[kind].ms), score = results[p].flatMap((r) => r[kind].score);
    row[kind] = { ms: +median(ms).toFixed(1), scoreMs: +median(score).toFixed(1) };
  }
  console.log(JSON.stringify(row));
}
