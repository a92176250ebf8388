// Usage: node --experimental-wasm-relaxed-simd bench/engines/ab-node.mjs MODEL_FILE REFERENCE_JSON
//          ROUNDS CALLS PKG_A PKG_B [PKG...]
// Warm personal recommend() of several packages in one Node process, in turns: each
// package loads MODEL_FILE once and records the reference history of REFERENCE_JSON
// (artifacts/engines/N[-int8]/reference.json, from `vitrine export-onnx`; its item
// indices and kinds, times relative to now), makes 30 untimed requests, then each round
// times CALLS `recommend({ k: 20, excludeSeen: false })` per package, the packages taking
// turns call by call. Prints each
// package's median of its rounds' medians and the rounds, then whether every package's
// first result was the same JSON (an A/B of a change that should not move a result).
// Run it in both orders: this VM's speed drifts between runs. PKG dirs absolute.
import { readFileSync } from 'fs';
const [model, refFile, rounds, calls, ...pkgs] = process.argv.slice(2);
if (!model || !refFile || !(+rounds > 0) || !(+calls > 0) || pkgs.length < 2) {
  console.error('usage: node bench/engines/ab-node.mjs MODEL_FILE REFERENCE_JSON ROUNDS CALLS PKG_A PKG_B [PKG...]');
  process.exit(2);
}
const ref = JSON.parse(readFileSync(refFile, 'utf8'));
const kindName = Object.fromEntries(Object.entries(ref.kinds).map(([n, i]) => [i, n]));
const now = Math.floor(Date.now() / 1000);
const recs = [];
for (const [p, dir] of pkgs.entries()) {
  // A query string per package: the same glue file imported twice would be one module.
  const mod = await import(`${dir}/vitrine.js?${p}`);
  mod.initSync({ module: readFileSync(`${dir}/vitrine_bg.wasm`) });
  const r = await mod.Recommender.fromBytes(readFileSync(model), { backend: 'simd', storage: 'memory', namespace: `ab${p}` });
  const ids = r.catalog().ids;
  for (const e of ref.history) {
    const type = typeof e.kind === 'string' ? e.kind : kindName[e.kind];
    r.record({ item: ids[e.index], type, at: now + e.atOffset });
  }
  for (let i = 0; i < 30; i++) await r.recommend({ k: 20, excludeSeen: false });
  recs.push(r);
}
const medians = pkgs.map(() => []);
const first = pkgs.map(() => null);
const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
// The packages take turns call by call (the first of each turn rotating), so that a
// drift of the machine's speed during a round reaches them alike.
for (let round = 0; round < +rounds; round++) {
  const ms = pkgs.map(() => []);
  for (let i = 0; i < +calls; i++) {
    for (let j = 0; j < pkgs.length; j++) {
      const p = (i + j) % pkgs.length;
      const t = performance.now();
      const out = await recs[p].recommend({ k: 20, excludeSeen: false });
      ms[p].push(performance.now() - t);
      first[p] ??= JSON.stringify(out);
    }
  }
  ms.forEach((m, p) => medians[p].push(median(m)));
}
for (const [p, dir] of pkgs.entries()) {
  console.log(`${dir}: median of round medians ${median(medians[p]).toFixed(4)} ms; rounds ${medians[p].map((x) => x.toFixed(3)).join(' ')}`);
}
console.log(`same results: ${first.every((f) => f === first[0])}`);
