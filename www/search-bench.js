// The search latency benchmark page (www/search-bench.html), driven by
// scripts/search-latency.mjs: as-you-type queries, text-only and personalised, against
// recommend({k: 20}) in the same page.
import { fetchBytes, hasRelaxedSimd } from './vitrine.js';

const params = new URLSearchParams(location.search);
const modelUrl = params.get('model') || 'models/online-retail.vitrine';
const set = params.get('set') || (/synthetic/.test(modelUrl) ? 'synthetic' : 'retail');
const runs = Math.max(3, Number(params.get('runs') || 10));
const builds = (params.get('builds') || 'relaxed,plain').split(',')
  .filter((b) => b !== 'relaxed' || hasRelaxedSimd());
const pkgs = { plain: '../pkg/vitrine.js', relaxed: '../pkg/relaxed/vitrine.js' };
const status = document.querySelector('[data-testid="bench-status"]');

// Whole queries; the page types every prefix of each. Retail: Online Retail titles
// (WHITE HANGING HEART T-LIGHT HOLDER, JUMBO BAG RED RETROSPOT, REGENCY CAKESTAND 3 TIER,
// ...). Synthetic: words of `vitrine synth` titles. Typo'd ones: one or two Damerau edits
// per word of four letters or more.
const QUERIES = {
  retail: {
    clean: ['hanging heart holder', 'jumbo bag retrospot', 'regency cakestand', 'christmas tree decoration'],
    typo: ['hangign hart holdr', 'jumbo bga retrospt', 'regancy cakstand', 'chrismas tree decoraton'],
  },
  synthetic: {
    clean: ['vintage glass lantern', 'red wooden box', 'floral ceramic teapot', 'striped cotton cushion'],
    typo: ['vintgae glas lantren', 'red woodne box', 'floral cermaic teapto', 'stripped coton cushon'],
  },
};

/** Every prefix of `q`, as typed: "r", "re", ..., "red wooden box". */
const prefixes = (q) => Array.from({ length: q.length }, (_, i) => q.slice(0, i + 1));
const quantile = (xs, p) => xs.slice().sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))];
const summary = (xs) => ({ medianMs: quantile(xs, 0.5), p95Ms: quantile(xs, 0.95), bestMs: Math.min(...xs), calls: xs.length });

function time(f) {
  const t0 = performance.now();
  const r = f();
  return [performance.now() - t0, r];
}

/** One build: load, record a history, type every query; per-call times by mode. */
async function runBuild(build, bytes) {
  const mod = await import(new URL(pkgs[build], import.meta.url).href);
  const wasm = await mod.default();
  const rec = await mod.Recommender.fromBytes(bytes, { backend: 'simd', namespace: `search-bench-${build}`, storage: 'memory' });
  try {
    const ids = rec.catalog().ids;
    const now = Date.now() / 1000;
    for (let i = 0; i < 20; i++) rec.record({ item: ids[(i * 7919) % ids.length], type: 'view', at: now - 3600 * (20 - i) });
    const modes = { text: { personalize: 0, k: 10 }, personal: { k: 10 } };
    const list = [...QUERIES[set].clean, ...QUERIES[set].typo].flatMap((q) => prefixes(q));
    const perQuery = [];
    const all = { text: [], personal: [], recommend: [] };
    for (let i = 0; i < 3; i++) await rec.recommend({ k: 20 });
    for (const [qi, q] of list.entries()) {
      if (qi % 10 === 0) status.textContent = `${build}: query ${qi + 1} of ${list.length}…`;
      const times = { text: [], personal: [] };
      let found = {};
      for (const mode of Object.keys(modes)) found[mode] = rec.search(q, modes[mode]); // warm-up
      for (let r = 0; r < runs; r++) {
        for (const mode of Object.keys(modes)) times[mode].push(time(() => rec.search(q, modes[mode]))[0]);
      }
      const t0 = performance.now();
      await rec.recommend({ k: 20 });
      all.recommend.push(performance.now() - t0);
      for (const mode of Object.keys(modes)) all[mode].push(...times[mode]);
      perQuery.push({
        query: q, total: found.text.total, personalized: found.personal.personalized,
        text: summary(times.text), personal: summary(times.personal),
      });
    }
    const breakdown = breakdownOf(rec);
    return {
      build, simd: mod.buildInfo().simd, items: rec.nItems, runs, queries: list.length,
      text: summary(all.text), personal: summary(all.personal), recommend: summary(all.recommend),
      slowestQuery: {
        text: perQuery.reduce((a, b) => (b.text.medianMs > a.text.medianMs ? b : a)),
        personal: perQuery.reduce((a, b) => (b.personal.medianMs > a.personal.medianMs ? b : a)),
      },
      breakdown, perQuery, wasmMemoryBytes: wasm.memory.buffer.byteLength,
    };
  } finally {
    rec.free();
  }
}

/** Where the time goes, on each whole query (medians of `runs` calls): facets off, one
 * result (the conversion to JavaScript shrinks), and the result's JSON size. */
function breakdownOf(rec) {
  const variants = {
    text: { personalize: 0, k: 10 },
    personal: { k: 10 },
    textNoFacets: { personalize: 0, k: 10, facets: false },
    textK1NoFacets: { personalize: 0, k: 1, facets: false },
    personalK1NoFacets: { k: 1, facets: false },
  };
  return [...QUERIES[set].clean, ...QUERIES[set].typo].map((q) => {
    const row = { query: q };
    for (const [name, opts] of Object.entries(variants)) {
      const res = rec.search(q, opts);
      const xs = [];
      for (let r = 0; r < runs; r++) xs.push(time(() => rec.search(q, opts))[0]);
      row[name] = quantile(xs, 0.5);
      if (name === 'text') { row.total = res.total; row.resultJsonBytes = JSON.stringify(res).length; }
    }
    return row;
  });
}

try {
  if (!QUERIES[set]) throw new Error(`unknown query set ${set}`);
  const bytes = await fetchBytes(modelUrl);
  const results = [];
  for (const build of builds) {
    if (!pkgs[build]) throw new Error(`unknown build ${build}`);
    results.push(await runBuild(build, bytes));
  }
  const tbody = document.querySelector('[data-testid="bench-table"] tbody');
  for (const r of results) {
    for (const mode of ['text', 'personal', 'recommend']) {
      const s = r[mode];
      const slow = mode === 'recommend' ? '–' : r.slowestQuery[mode][mode].medianMs.toFixed(2);
      const tr = document.createElement('tr');
      for (const v of [r.build, r.items, mode, r.queries, s.medianMs.toFixed(2), s.p95Ms.toFixed(2),
        s.bestMs.toFixed(2), slow, (s.medianMs / r.recommend.medianMs).toFixed(2)]) {
        const td = document.createElement('td'); td.textContent = v; tr.append(td);
      }
      tbody.append(tr);
    }
  }
  document.querySelector('[data-testid="bench-result"]').textContent = JSON.stringify({
    model: modelUrl, set, weightFileBytes: bytes.length, userAgent: navigator.userAgent, relaxedSimd: hasRelaxedSimd(), results,
  }, null, 2);
  status.textContent = 'done';
  document.body.dataset.state = 'done';
} catch (e) {
  status.textContent = `failed: ${e.message}`;
  document.body.dataset.state = 'error';
}
