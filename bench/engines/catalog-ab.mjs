// Usage: node bench/engines/catalog-ab.mjs MODEL_FILE PKG_DIR [ROUNDS]
// The catalogue's two routes to a page, in headless Chromium, a fresh browser per round
// (each route's first call, as at load): `catalog()` (JavaScript values made by the wasm,
// in batches) and `unpackCatalog(catalogPacked())` (typed arrays, strings made by
// www/catalog.js), in alternating order. Prints milliseconds per route and round, and
// whether the two gave the same object. PKG_DIR: a package from `wasm-bindgen --target web` (see profile-load.mjs).
import { basename, join, resolve } from 'path';
import { launchChromium, serveFiles } from './serve.mjs';
const [model, pkg, rounds = '3'] = process.argv.slice(2);
if (!model || !pkg) {
  console.error('usage: node bench/engines/catalog-ab.mjs MODEL_FILE PKG_DIR [ROUNDS]');
  process.exit(2);
}
const www = resolve('www');
const server = await serveFiles((url) => {
  if (url === '/model') return resolve(model);
  if (url.startsWith('/www/')) return join(www, basename(url));
  return join(resolve(pkg), basename(url));
});
for (let round = 0; round < +rounds; round++) {
  const browser = await launchChromium();
  const tab = await browser.newPage();
  tab.on('pageerror', (e) => console.error(e.message));
  await tab.goto(server.base + '/');
  const r = await tab.evaluate(async (order) => {
    const mod = await import('/pkg/vitrine.js');
    await mod.default({ module_or_path: '/pkg/vitrine_bg.wasm' });
    const { unpackCatalog } = await import('/www/catalog.js');
    const bytes = new Uint8Array(await (await fetch('/model')).arrayBuffer());
    const rec = await mod.Recommender.fromBytes(bytes, { backend: 'simd', storage: 'memory', namespace: 'ab' });
    const out = {};
    const got = {};
    for (const route of order) {
      const t = performance.now();
      got[route] = route === 'catalog' ? rec.catalog() : unpackCatalog(rec.catalogPacked());
      out[route] = performance.now() - t;
    }
    const same = JSON.stringify(got.catalog) === JSON.stringify(got.packed);
    return { ...out, same };
  }, round % 2 ? ['packed', 'catalog'] : ['catalog', 'packed']);
  console.log(`round ${round + 1}: catalog() ${r.catalog.toFixed(0)} ms, packed + unpack ${r.packed.toFixed(0)} ms${r.same ? '' : ' — DIFFERENT OBJECTS'}`);
  await browser.close();
}
server.close();
