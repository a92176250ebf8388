// Usage: node bench/engines/catalog-ab.mjs MODEL_FILE PKG_DIR [ROUNDS]
// The catalogue's two routes to a page, as a cold load takes them: per round two fresh
// headless Chromium browsers, one per route, in alternating order; each loads MODEL_FILE
// (`Recommender.fromBytes`), makes the catalogue — `catalog()` (JavaScript values made by
// the wasm, in batches) or `unpackCatalog(catalogPacked())` (typed arrays made into
// strings by www/catalog.js) — then records 10 viewed items and asks for the first
// recommendation. Prints the milliseconds of the catalogue step and of what follows it
// (the garbage the first step leaves is collected there), per route and round, and
// checks the routes' catalogues are equal (their JSON's SHA-256). PKG_DIR: a package from
// `wasm-bindgen --target web` (see profile-load.mjs).
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
const digests = new Set();
for (let round = 0; round < +rounds; round++) {
  const line = [];
  for (const route of round % 2 ? ['packed', 'catalog'] : ['catalog', 'packed']) {
    const browser = await launchChromium();
    const tab = await browser.newPage();
    tab.on('pageerror', (e) => console.error(e.message));
    await tab.goto(server.base + '/');
    const r = await tab.evaluate(async (route) => {
      const mod = await import('/pkg/vitrine.js');
      await mod.default({ module_or_path: '/pkg/vitrine_bg.wasm' });
      const { unpackCatalog } = await import('/www/catalog.js');
      const bytes = new Uint8Array(await (await fetch('/model')).arrayBuffer());
      const rec = await mod.Recommender.fromBytes(bytes, { backend: 'simd', storage: 'memory', namespace: 'ab' });
      const t0 = performance.now();
      const cat = route === 'catalog' ? rec.catalog() : unpackCatalog(rec.catalogPacked());
      const t1 = performance.now();
      const ids = cat.ids;
      for (let i = 0; i < 10; i++) rec.record({ item: ids[(i * 7919) % ids.length], type: 'view' });
      await rec.recommend({ k: 20 });
      const t2 = performance.now();
      const json = new TextEncoder().encode(JSON.stringify(cat));
      const digest = [...new Uint8Array(await crypto.subtle.digest('SHA-256', json))].map((b) => b.toString(16).padStart(2, '0')).join('');
      return { catalogMs: t1 - t0, restMs: t2 - t1, digest };
    }, route);
    digests.add(r.digest);
    line.push(`${route} ${r.catalogMs.toFixed(0)} + ${r.restMs.toFixed(0)} ms`);
    await browser.close();
  }
  console.log(`round ${round + 1}: ${line.join(', ')}`);
}
console.log(digests.size === 1 ? 'the two routes gave the same catalogue' : 'THE ROUTES GAVE DIFFERENT CATALOGUES');
server.close();
process.exitCode = digests.size === 1 ? 0 : 1;
