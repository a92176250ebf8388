// Usage: node bench/engines/same-scores.mjs MODEL_FILE PKG_A PKG_B
// Whether two packages rank bit for bit alike, in headless Chromium (/usr/bin/chromium):
// in a page per package, six histories (3 to 28 recorded events, views and carts), each
// after 20 untimed requests (so that the relaxed build's scorer has chosen its int8
// multiply form), then `recommend({ k: 500, excludeSeen: false })`; prints whether the
// 6 × 500 (index, score) pairs are identical, else the first difference per history. For
// a change that must not move any score (a faster kernel with the same operations).
// PKG_A / PKG_B: wasm-bindgen `--target web` directories (e.g. a copy of pkg/relaxed
// from before the change, and pkg/relaxed). Needs playwright-core (npm install at the
// repository root).
import { launchChromium, serveFiles } from './serve.mjs';
import { basename, join, resolve } from 'path';
const [model, a, b] = process.argv.slice(2);
if (!model || !a || !b) {
  console.error('usage: node bench/engines/same-scores.mjs MODEL_FILE PKG_A PKG_B');
  process.exit(2);
}
const pk = [a, b];
const server = await serveFiles((url) => { if (url === '/model') return resolve(model); const m = url.match(/^\/pkg(\d)\/(.+)$/); return m ? join(resolve(pk[+m[1]]), basename(m[2])) : ''; });
const br = await launchChromium();
const out = [];
for (let p = 0; p < 2; p++) {
  const page = await br.newPage();
  await page.goto(server.base + '/');
  out.push(await page.evaluate(async (url) => {
    const mod = await import(url + '/vitrine.js'); await mod.default({ module_or_path: url + '/vitrine_bg.wasm' });
    const bytes = new Uint8Array(await (await fetch('/model')).arrayBuffer());
    const r = await mod.Recommender.fromBytes(bytes, { backend: 'simd', storage: 'memory', namespace: 's' });
    const ids = r.catalog().ids; const res = [];
    for (let h = 0; h < 6; h++) {
      r.clearHistory();
      for (let i = 0; i < 3 + h * 5; i++) r.record({ item: ids[(i * 7919 + h * 104729) % ids.length], type: i % 3 ? 'view' : 'cart' });
      for (let i = 0; i < 20; i++) await r.recommend({ k: 20 }); // past the tuner
      res.push((await r.recommend({ k: 500, excludeSeen: false })).map((x) => [x.index, x.score]));
    }
    return res;
  }, `${server.base}/pkg${p}`));
  await page.close();
}
const same = JSON.stringify(out[0]) === JSON.stringify(out[1]);
console.log('identical:', same, 'lists', out[0].length, 'x', out[0][0].length);
process.exitCode = same ? 0 : 1;
if (!same) { for (let h = 0; h < out[0].length; h++) { const d = out[0][h].findIndex((x, i) => x[0] !== out[1][h][i][0] || x[1] !== out[1][h][i][1]); console.log(h, d, JSON.stringify(out[0][h][d]), JSON.stringify(out[1][h][d])); } }
await br.close(); server.close();
