// Usage: node bench/engines/search-node.mjs PKG_A PKG_B MODEL_FILE (package dirs absolute,
// each from `cargo build --release --target wasm32-unknown-unknown --lib` +
// `wasm-bindgen --target web`). search() latency of two builds of vitrine in one Node
// process, on the same weight file: 450 queries drawn from the catalogue's titles (a
// word, its prefix, two words; seeded), checked to give the same results and scores in
// both, then timed in 5 rounds per build, builds interleaved. Prints the medians, the
// totals and B's total over A's. Run it twice with the builds swapped: the first build
// loaded tends to time differently.
import { readFileSync } from 'fs';

const [a, b, model] = process.argv.slice(2);
if (!a || !b || !model) {
  console.error('usage: node bench/engines/search-node.mjs PKG_A PKG_B MODEL_FILE');
  process.exit(2);
}
const bytes = readFileSync(model);
async function load(dir) {
  const mod = await import(`${dir}/vitrine.js?${dir}`);
  mod.initSync({ module: readFileSync(`${dir}/vitrine_bg.wasm`) });
  return mod.Recommender.fromBytes(bytes, { backend: 'simd', storage: 'memory', namespace: dir });
}
const ra = await load(a);
const rb = await load(b);
const titles = ra.catalog().titles;
let seed = 7;
const rnd = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
const queries = [];
for (let i = 0; i < 150; i++) {
  const words = titles[Math.floor(rnd() * titles.length)].split(/\s+/).filter((w) => w.length > 2);
  if (!words.length) continue;
  const one = words[Math.floor(rnd() * words.length)].toLowerCase();
  queries.push(one, one.slice(0, Math.max(2, one.length - 2)), words.slice(0, 2).join(' ').toLowerCase());
}
const answer = (r, q) => JSON.stringify(r.search(q, { k: 10 }).results.map((h) => [h.item, h.score, h.reasons]));
const differ = queries.filter((q) => answer(ra, q) !== answer(rb, q));
if (differ.length) {
  console.error(`the builds answer differently on ${differ.length} queries, e.g. ${JSON.stringify(differ[0])}`);
  process.exit(1);
}
const time = (r) => queries.map((q) => {
  const t0 = performance.now();
  r.search(q, { k: 10 });
  return performance.now() - t0;
});
const ta = [];
const tb = [];
for (let round = 0; round < 5; round++) {
  ta.push(...time(ra));
  tb.push(...time(rb));
}
const median = (v) => [...v].sort((x, y) => x - y)[v.length >> 1];
const sum = (v) => v.reduce((x, y) => x + y, 0);
console.log(JSON.stringify({
  queries: queries.length,
  sameResults: true,
  medianMsA: +median(ta).toFixed(3),
  medianMsB: +median(tb).toFixed(3),
  totalMsA: +sum(ta).toFixed(0),
  totalMsB: +sum(tb).toFixed(0),
  ratioB: +(sum(tb) / sum(ta)).toFixed(3),
}));
