// Usage: node bench/engines/first-request.mjs MODEL_FILE PKG_DIR [ROUNDS]
// The first requests after a load, in headless Chromium, a fresh browser per round
// (default 2): `Recommender.fromBytes` (default options: WebCrypto hashes, the kernel's
// warm-up), the catalogue (`catalogPacked()`, then `catalog()` for the ids), 20 recorded
// views an hour apart, then four `recommend({ k: 20 })` calls. Prints each step's
// milliseconds; the first call against the later ones is what a module's baseline code
// costs (the README's warm-up figures). PKG_DIR: a package from `wasm-bindgen --target
// web` (and `wasm-opt`, as scripts/build-wasm.sh runs it, to measure what ships).
import { basename, join, resolve } from 'path';
import { launchChromium, serveFiles } from './serve.mjs';
const [model, pkg, rounds = '2'] = process.argv.slice(2);
if (!model || !pkg) {
  console.error('usage: node bench/engines/first-request.mjs MODEL_FILE PKG_DIR [ROUNDS]');
  process.exit(2);
}
const server = await serveFiles((url) => (url === '/model' ? resolve(model) : join(resolve(pkg), basename(url))));
for (let r = 0; r < +rounds; r++) {
  const browser = await launchChromium();
  const tab = await browser.newPage();
  tab.on('pageerror', (e) => console.error(e.message));
  await tab.goto(server.base + '/');
  const out = await tab.evaluate(async () => {
    const mod = await import('/pkg/vitrine.js');
    await mod.default({ module_or_path: '/pkg/vitrine_bg.wasm' });
    const bytes = new Uint8Array(await (await fetch('/model')).arrayBuffer());
    const t0 = performance.now();
    const rec = await mod.Recommender.fromBytes(bytes, { storage: 'memory', namespace: 'first' });
    const t1 = performance.now();
    rec.catalogPacked();
    const t2 = performance.now();
    const ids = rec.catalog().ids;
    const t3 = performance.now();
    const now = Math.floor(Date.now() / 1000);
    for (let i = 0; i < 20; i++) rec.record({ item: ids[(i * 7919) % ids.length], type: 'view', at: now - 3600 * (19 - i) });
    const calls = [];
    for (let i = 0; i < 4; i++) {
      const a = performance.now();
      await rec.recommend({ k: 20, excludeSeen: false });
      calls.push(Math.round(performance.now() - a));
    }
    return { fromBytes: Math.round(t1 - t0), catalogPacked: Math.round(t2 - t1), catalog: Math.round(t3 - t2), recommend: calls, backend: rec.backend };
  });
  console.log(`round ${r + 1}: ${JSON.stringify(out)}`);
  await browser.close();
}
server.close();
