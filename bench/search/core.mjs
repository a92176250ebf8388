// Measurement core of the search bench, shared by Node (run.mjs) and the browser page
// (page.mjs): input validation, rank metrics, index build (time, heap) and interleaved
// latency. No Node or DOM APIs here; only `performance.now()`.
//
// Metrics per query, with r the 1-based rank of the target in the engine's top 100
// (r = ∞ when absent):
//   RR = 1/r (0 when r > 100)            -> MRR (mean over queries)
//   HR@10 = [r <= 10]                    -> hit rate
//   NDCG@10 = [r <= 10] / log2(r + 1)    -> one relevant item, so IDCG = 1
// Engines are called `search(query, k, record)`: `record` is the whole query record
// ({ query, target, variant, split, history }), for engines that read the history.
// Latency: wall time of one `search(query, 10)` call, `performance.now()` before and
// after; engines are interleaved per query (the order rotates every query) so that no
// engine always runs on a cold or a warm cache; the first `warmup` calls of each engine
// are excluded.

/** Largest rank that counts for MRR, and the cut-off of HR / NDCG. */
export const MRR_DEPTH = 100;
export const K = 10;
const MAX_ITEMS = 10_000_000;
const MAX_QUERIES = 10_000_000;
const MAX_QUERY_CHARS = 1000;
/** Most history events read per query record (vitrine's browser store keeps 200). */
export const MAX_HISTORY_EVENTS = 1000;
const KINDS_OF_EVENT = new Set(['view', 'cart', 'purchase']);

/** Parses queries.jsonl text into objects (blank lines skipped); throws on a bad line. */
export function parseQueriesJsonl(text) {
  const out = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (line === '') continue;
    if (out.length >= MAX_QUERIES) throw new Error(`queries.jsonl: more than ${MAX_QUERIES} queries`);
    try {
      out.push(JSON.parse(line));
    } catch (e) {
      throw new Error(`queries.jsonl line ${i + 1}: not JSON (${e.message})`);
    }
  }
  return out;
}

/**
 * Checks the catalogue and queries against the input contract (README.md) and resolves each
 * target id to its catalogue index. Returns { catalog, queries: [{ query, target, variant,
 * split }] } with `target` the index; throws an Error naming the first bad record.
 */
export function validateInputs(catalog, rawQueries) {
  if (!Array.isArray(catalog) || catalog.length === 0) throw new Error('catalog.json: expected a non-empty array');
  if (catalog.length > MAX_ITEMS) throw new Error(`catalog.json: more than ${MAX_ITEMS} items`);
  const index = new Map();
  catalog.forEach((it, i) => {
    if (!it || typeof it.id !== 'string' || typeof it.title !== 'string') throw new Error(`catalog.json[${i}]: needs string id and title`);
    if (it.category != null && typeof it.category !== 'string') throw new Error(`catalog.json[${i}]: category must be a string`);
    if (index.has(it.id)) throw new Error(`catalog.json[${i}]: duplicate id ${JSON.stringify(it.id)}`);
    index.set(it.id, i);
  });
  const queries = rawQueries.map((q, i) => {
    const where = `queries.jsonl record ${i + 1}`;
    if (!q || typeof q.query !== 'string' || q.query.length > MAX_QUERY_CHARS) throw new Error(`${where}: query must be a string of at most ${MAX_QUERY_CHARS} chars`);
    if (!index.has(q.target)) throw new Error(`${where}: target ${JSON.stringify(q.target)} is not in the catalogue`);
    if (q.variant !== 'clean' && q.variant !== 'typo') throw new Error(`${where}: variant must be "clean" or "typo"`);
    if (q.split !== 'valid' && q.split !== 'test') throw new Error(`${where}: split must be "valid" or "test"`);
    const history = validateHistory(q.history, index, where);
    const out = { query: q.query, target: index.get(q.target), variant: q.variant, split: q.split, history };
    if (q.vitrine != null) out.vitrine = validateExpected(q.vitrine, where);
    return out;
  });
  if (queries.length === 0) throw new Error('queries.jsonl: no queries');
  return { catalog, queries };
}

/**
 * The shopper's history of a query record (optional; [] when absent): at most
 * MAX_HISTORY_EVENTS events `{ item, kind, at }` with `item` a catalogue id, `kind` view,
 * cart or purchase, `at` finite Unix seconds. Returned as given (ids, oldest first).
 */
function validateHistory(history, index, where) {
  if (history == null) return [];
  if (!Array.isArray(history) || history.length > MAX_HISTORY_EVENTS) throw new Error(`${where}: history must be an array of at most ${MAX_HISTORY_EVENTS} events`);
  history.forEach((e, j) => {
    const bad = (why) => new Error(`${where}: history[${j}]: ${why}`);
    if (!e || typeof e.item !== 'string' || !index.has(e.item)) throw bad(`item ${JSON.stringify(e && e.item)} is not in the catalogue`);
    if (!KINDS_OF_EVENT.has(e.kind)) throw bad('kind must be "view", "cart" or "purchase"');
    if (typeof e.at !== 'number' || !Number.isFinite(e.at)) throw bad('at must be a finite number (Unix seconds)');
  });
  return history.map((e) => ({ item: e.item, kind: e.kind, at: e.at }));
}

/** `vitrine search-eval`'s ranks of the target (0 = not in its top MRR_DEPTH). */
function validateExpected(v, where) {
  const rank = (x) => Number.isInteger(x) && x >= 0 && x <= MRR_DEPTH;
  if (!v || !rank(v.textRank) || !rank(v.personalizedRank) || typeof v.personalize !== 'number') {
    throw new Error(`${where}: vitrine must be { textRank, personalizedRank (integers 0..${MRR_DEPTH}), personalize (number) }`);
  }
  return { textRank: v.textRank, personalizedRank: v.personalizedRank, personalize: v.personalize };
}

/** 1-based rank of `target` in `list` (first MRR_DEPTH entries), or 0 when absent. */
export function rankOf(list, target) {
  const n = Math.min(list.length, MRR_DEPTH);
  for (let i = 0; i < n; i++) if (list[i] === target) return i + 1;
  return 0;
}

/** Mean RR, HR@10 and NDCG@10 of a list of ranks (0 = not found). */
export function summarise(ranks) {
  let rr = 0;
  let hr = 0;
  let ndcg = 0;
  for (const r of ranks) {
    if (r > 0) rr += 1 / r;
    if (r > 0 && r <= K) (hr += 1), (ndcg += 1 / Math.log2(r + 1));
  }
  const n = ranks.length;
  return n ? { n, mrr: rr / n, hr10: hr / n, ndcg10: ndcg / n } : { n: 0, mrr: 0, hr10: 0, ndcg10: 0 };
}

/** Awaits only what is a promise, so that sync engines are timed without a microtask. */
const settle = (x) => (x && typeof x.then === 'function' ? x : null);

/** Runs every query at depth MRR_DEPTH; returns { ranks, byVariant: { all, clean, typo } }. */
export async function quality(engine, queries) {
  const ranks = [];
  for (const q of queries) {
    let list = engine.search(q.query, MRR_DEPTH, q);
    if (settle(list)) list = await list;
    ranks.push(rankOf(list, q.target));
  }
  const pick = (v) => summarise(ranks.filter((_, i) => queries[i].variant === v));
  return { ranks, byVariant: { all: summarise(ranks), clean: pick('clean'), typo: pick('typo') } };
}

/**
 * Builds an engine's index and measures it: { buildMs, heapBytes } (heapBytes null when
 * `memory` is not given). `memory` = { gc(), used() } (Node: --expose-gc and heapUsed;
 * Chromium: window.gc and performance.memory.usedJSHeapSize).
 */
export async function buildMeasured(engine, catalog, memory) {
  if (memory) memory.gc();
  const before = memory ? memory.used() : 0;
  const t0 = performance.now();
  const b = engine.build(catalog);
  if (settle(b)) await b;
  const buildMs = performance.now() - t0;
  if (memory) memory.gc();
  const heapBytes = memory ? memory.used() - before : null;
  return { buildMs, heapBytes };
}

/** Smallest non-zero step of performance.now() seen in a short spin (ms). */
export function timerResolution() {
  let best = Infinity;
  let prev = performance.now();
  for (let i = 0; i < 200000; i++) {
    const t = performance.now();
    if (t > prev) best = Math.min(best, t - prev), (prev = t);
  }
  return best;
}

/** Median, p95 (nearest rank), best and mean of a list of milliseconds. */
export function latencyStats(ms) {
  const s = [...ms].sort((a, b) => a - b);
  const at = (p) => s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))];
  const mean = s.reduce((a, b) => a + b, 0) / (s.length || 1);
  return s.length ? { n: s.length, medianMs: at(0.5), p95Ms: at(0.95), bestMs: s[0], meanMs: mean } : { n: 0, medianMs: null, p95Ms: null, bestMs: null, meanMs: null };
}

/**
 * Times `search(query, K)` for every engine on every query, `rounds` passes, engines
 * interleaved (order rotates by one each query). The first `warmup` calls per engine are
 * run but not recorded. Returns one latencyStats object per engine (same order).
 */
export async function latency(engines, queries, { rounds = 3, warmup = 50 } = {}) {
  const times = engines.map(() => []);
  const calls = engines.map(() => 0);
  let step = 0;
  for (let r = 0; r < rounds; r++) {
    for (const q of queries) {
      for (let j = 0; j < engines.length; j++) {
        const e = (j + step) % engines.length;
        const t0 = performance.now();
        const out = engines[e].search(q.query, K, q);
        if (settle(out)) await out;
        const dt = performance.now() - t0;
        if (calls[e]++ >= warmup) times[e].push(dt);
      }
      step++;
    }
  }
  return times.map(latencyStats);
}

/**
 * The whole measurement for a set of built-or-not engines on the test queries: build each
 * (sequentially, heap measured), quality, then interleaved latency. Returns one record per
 * engine: { kind, name, version, config, buildMs, heapBytes, wasmBytes (wasm memory after
 * the build, null for JS engines), quality: { all, clean, typo }, ranks (per query, 0 =
 * absent), latency }.
 */
export async function measure(engines, catalog, queries, { rounds, warmup, memory } = {}) {
  const out = [];
  for (const e of engines) {
    const build = await buildMeasured(e, catalog, memory);
    const q = await quality(e, queries);
    const wasm = typeof e.wasmBytes === 'function' ? e.wasmBytes() : null;
    out.push({ kind: e.kind, name: e.name, version: e.version, config: e.config, ...build, wasmBytes: wasm, quality: q.byVariant, ranks: q.ranks });
  }
  const lat = await latency(engines, queries, { rounds, warmup });
  lat.forEach((l, i) => (out[i].latency = l));
  return out;
}
