// Usage: node [--experimental-wasm-relaxed-simd] bench/engines/warm-node.mjs PKG_DIR MODEL_FILE [CALLS]
// Warm recommend() latency of one package in Node's V8: one load, 10 viewed items recorded,
// 10 warm-up calls, then CALLS (default 40) personal `recommend({ k: 20 })` calls. Prints
// one JSON line: the median and best milliseconds and the last call's stats().scoreMs.
// Run two builds in turns (several rounds each, alternating) to compare them; Node 20
// needs --experimental-wasm-relaxed-simd for the relaxed build. PKG_DIR absolute.
import { readFileSync } from 'fs';
const [dir, model, calls = '40'] = process.argv.slice(2);
if (!dir || !model) {
  console.error('usage: node bench/engines/warm-node.mjs PKG_DIR MODEL_FILE [CALLS]');
  process.exit(2);
}
const mod = await import(dir + '/vitrine.js');
mod.initSync({ module: readFileSync(dir + '/vitrine_bg.wasm') });
const r = await mod.Recommender.fromBytes(readFileSync(model), { backend: 'simd', storage: 'memory', namespace: 'warm' });
const ids = r.catalog().ids;
for (let i = 0; i < 10; i++) r.record({ item: ids[(i * 7919) % ids.length], type: 'view' });
const ms = [];
for (let i = 0; i < +calls + 10; i++) {
  const t = performance.now();
  await r.recommend({ k: 20, excludeSeen: false });
  ms.push(performance.now() - t);
}
const s = ms.slice(10).sort((a, b) => a - b);
console.log(JSON.stringify({ pkg: dir, median: +s[s.length >> 1].toFixed(3), best: +s[0].toFixed(3), scoreMs: r.stats().scoreMs }));
