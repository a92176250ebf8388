// Usage: node bench/engines/requests-node.mjs PKG_DIR MODEL_FILE (PKG_DIR absolute).
// recommend() latency by kind of request in Node's V8, after one load: the empty-history
// fallback (popularity), then, with 10 viewed items recorded, "similar items" (a context
// item) and a plain personal request. Prints each call's milliseconds (the first call of
// each kind includes warm-up). Run two builds in turns to compare them.
import { readFileSync } from 'fs';
const [dir, model] = process.argv.slice(2);
const mod = await import(dir + '/vitrine.js');
mod.initSync({ module: readFileSync(dir + '/vitrine_bg.wasm') });
const r = await mod.Recommender.fromBytes(readFileSync(model), { backend: 'simd', storage: 'memory', namespace: 'requests' });
const time = async (calls, options) => {
  const ms = [];
  for (let i = 0; i < calls; i++) {
    const t = performance.now();
    await r.recommend(options(i));
    ms.push(+(performance.now() - t).toFixed(1));
  }
  return ms;
};
const fallback = await time(6, () => ({ k: 20 }));
const ids = r.catalog().ids;
for (let i = 0; i < 10; i++) r.record({ item: ids[(i * 7919) % ids.length], type: 'view' });
const context = await time(6, (i) => ({ k: 20, context: ids[i * 31] }));
const personal = await time(4, () => ({ k: 20 }));
console.log(JSON.stringify({ fallback, context, personal }));
