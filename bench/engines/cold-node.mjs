// Usage: node bench/engines/cold-node.mjs PKG_DIR MODEL_FILE (PKG_DIR absolute, e.g. $PWD/pkg).
// One cold load in Node's V8: initSync, Recommender.fromBytes, first and second recommend().
// loadedMiB: wasm memory right after fromBytes; wasmMiB: at the end (after catalog() and
// both recommend() calls; wasm memory never shrinks, so both are high-water marks), in MiB
// to two decimals (the 160 MiB target is met or missed by fractions).
import { readFileSync } from 'fs';
const [dir, model] = process.argv.slice(2);
const mod = await import(dir + '/vitrine.js');
const t0 = performance.now();
const w = mod.initSync({ module: readFileSync(dir + '/vitrine_bg.wasm') });
const bytes = readFileSync(model);
const t1 = performance.now();
const r = await mod.Recommender.fromBytes(bytes, { backend: 'simd', storage: 'memory', namespace: 'cold' });
const t2 = performance.now();
// wasm memory once loaded, before catalog() (which builds the whole catalogue as a JSON
// tree inside wasm memory first) and the recommend() calls.
const loadedMiB = +(w.memory.buffer.byteLength / 1048576).toFixed(2);
const ids = r.catalog().ids;
for (let i = 0; i < 10; i++) r.record({ item: ids[(i * 7919) % ids.length], type: 'view' });
const t2b = performance.now();
await r.recommend({ k: 20 });
const s1 = r.stats();
const t3 = performance.now();
await r.recommend({ k: 20 });
const t4 = performance.now();
console.log(JSON.stringify({ init: +(t1 - t0).toFixed(0), fromBytes: +(t2 - t1).toFixed(0), first: +(t3 - t2b).toFixed(0), second: +(t4 - t3).toFixed(0), scoreMs1: s1.scoreMs, loadedMiB, wasmMiB: +(w.memory.buffer.byteLength / 1048576).toFixed(2) }));
