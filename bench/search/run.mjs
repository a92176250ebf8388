#!/usr/bin/env node
// Search comparison harness (README.md in this folder): tunes each engine on the validation
// queries (Node), then measures quality and latency on the test queries, in Node
// (default, quick) or in headless Chromium (--browser, what the README reports).
//
// Usage: node bench/search/run.mjs [--inputs artifacts/search] [--out artifacts/search-bench.json]
//          [--browser] [--rounds 3] [--warmup 50]
//          [--engines minisearch,orama,vitrine,vitrine-personalized] [--no-tune] [--retune]
//          [--tuning-cache artifacts/search-tuning.json] [--model www/models/online-retail.vitrine]
//        node bench/search/run.mjs --smoke     (3 exact-title queries per engine; exit 1 when
//                                               an engine misses one)
// vitrine's engines need pkg/ (scripts/build-wasm.sh) and the weight file the inputs were
// written from (--model); their text-only ranks are checked against the ranks
// `vitrine search-eval` wrote into queries.jsonl (exit 2 on any difference).
// Node mode measures heap when run with --expose-gc (search-bench.sh does).
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { KINDS, vitrineCatalog, vitrineSettings } from './engines.mjs';
import { measure, quality, parseQueriesJsonl, rankOf, summarise, timerResolution, validateInputs } from './core.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '../..');
const MAX_FILE_BYTES = 256 << 20;
/** Package whose version each kind reports (npm, or vitrine's own pkg/). */
const VERSION_OF = { minisearch: 'minisearch', orama: '@orama/orama', vitrine: 'vitrine', 'vitrine-personalized': 'vitrine' };
const VITRINE_KINDS = new Set(['vitrine', 'vitrine-personalized']);

const args = process.argv.slice(2);
const flag = (name) => args.includes(name);
function opt(name, fallback) {
  const i = args.indexOf(name);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : fallback;
}

function readBounded(file) {
  const st = fs.statSync(file);
  if (st.size > MAX_FILE_BYTES) throw new Error(`${file}: larger than ${MAX_FILE_BYTES} bytes`);
  return fs.readFileSync(file, 'utf8');
}

function versionOf(kind) {
  const pkg = VITRINE_KINDS.has(kind) ? path.join(ROOT, 'pkg/package.json') : path.join(HERE, 'node_modules', VERSION_OF[kind], 'package.json');
  if (!fs.existsSync(pkg)) throw new Error(`${kind}: no ${path.relative(ROOT, pkg)} (${VITRINE_KINDS.has(kind) ? 'bash scripts/build-wasm.sh' : 'npm ci in bench/search'})`);
  return JSON.parse(fs.readFileSync(pkg, 'utf8')).version;
}

/** --model as a repository-relative path (the browser page fetches it from the server root). */
function modelPath() {
  const abs = path.resolve(opt('--model', path.join(ROOT, 'www/models/online-retail.vitrine')));
  const rel = path.relative(ROOT, abs);
  if (rel.startsWith('..') || path.isAbsolute(rel)) throw new Error(`--model ${abs}: must be inside the repository (the page fetches it from there)`);
  if (!fs.existsSync(abs)) throw new Error(`--model ${rel}: no such file (cargo run --release -- train)`);
  return rel.split(path.sep).join('/');
}

/**
 * The vitrine engines' ranks against `vitrine search-eval`'s (written into each query
 * record): text only must agree on every query (throws, naming the first differences);
 * personalised ranks are counted (the model's logits come from a different SIMD kernel
 * natively, so a near-tie may swap) and returned for the report.
 */
function crossCheck(results, queries) {
  const out = {};
  for (const r of results) {
    if (!VITRINE_KINDS.has(r.kind)) continue;
    const key = r.kind === 'vitrine' ? 'textRank' : 'personalizedRank';
    const diff = [];
    let checked = 0;
    queries.forEach((q, i) => {
      if (!q.vitrine) return;
      checked++;
      if (q.vitrine[key] !== r.ranks[i]) diff.push(`${JSON.stringify(q.query)}: bench ${r.ranks[i]}, search-eval ${q.vitrine[key]}`);
    });
    if (!checked) throw new Error(`${r.name}: queries.jsonl has no search-eval ranks to check against (write it with vitrine search-eval --write-queries)`);
    out[r.kind] = { checked, differ: diff.length, examples: diff.slice(0, 5) };
    const what = `${r.name}: ${checked - diff.length}/${checked} ranks equal to vitrine search-eval's`;
    if (r.kind === 'vitrine' && diff.length) throw new Error(`${what}; text-only ranks must all agree:\n  ${diff.slice(0, 10).join('\n  ')}`);
    console.error(what);
  }
  return out;
}

const nodeMemory = typeof globalThis.gc === 'function' ? { gc: () => globalThis.gc(), used: () => process.memoryUsage().heapUsed } : null;

/** Key order does not matter. */
const canonical = (c) => JSON.stringify(Object.keys(c).sort().map((key) => [key, c[key]]));
const sameConfig = (a, b) => canonical(a) === canonical(b);

/**
 * Tries every configuration of the kind's grid on the validation queries; the score is
 * NDCG@10 over clean and typo queries pooled. Returns { best, defaultScore, bestScore, tried }.
 */
async function tune(kind, version, catalog, valid) {
  const k = KINDS[kind];
  let best = null;
  let bestScore = -1;
  let defaultScore = null;
  const grid = k.grid();
  for (const [i, config] of grid.entries()) {
    if (i % 12 === 0) console.error(`tuning ${k.name}: config ${i + 1}/${grid.length}`);
    const e = k.make(config, version);
    await e.build(catalog);
    const score = (await quality(e, valid)).byVariant.all.ndcg10;
    if (sameConfig(config, k.defaultConfig)) defaultScore = score;
    if (score > bestScore) (best = config), (bestScore = score);
  }
  return { best, bestScore, defaultConfig: k.defaultConfig, defaultScore, tried: grid.length };
}

/**
 * tune() through a cache file (--tuning-cache, default artifacts/search-tuning.json): the
 * key hashes the catalogue file, the validation queries (text, target, variant: what a
 * tuned engine reads; not vitrine's histories and ranks, so a vitrine change does not
 * retune the others), the engine kind, its version, its grid and its default, so a change
 * to any of them retunes; --retune ignores the cache.
 */
async function tuneCached(kind, version, catalog, valid, inputsText) {
  const file = path.resolve(opt('--tuning-cache', path.join(ROOT, 'artifacts/search-tuning.json')));
  const key = crypto
    .createHash('sha256')
    .update([inputsText, kind, version, JSON.stringify(KINDS[kind].grid()), canonical(KINDS[kind].defaultConfig)].join('\0'))
    .digest('hex');
  let cache = {};
  if (fs.existsSync(file)) cache = JSON.parse(readBounded(file));
  if (!flag('--retune') && cache[key]) return { ...cache[key], cached: true };
  const t = await tune(kind, version, catalog, valid);
  cache[key] = t;
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, JSON.stringify(cache, null, 2) + '\n');
  return t;
}

/** Starts scripts/serve.mjs on a free port; resolves { url, close }. */
function startServer() {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(ROOT, 'scripts/serve.mjs'), '--port', '0', '--root', ROOT], { stdio: ['ignore', 'pipe', 'inherit'] });
    let buf = '';
    child.stdout.on('data', (d) => {
      buf += d;
      const m = /listening on (http:\/\/127\.0\.0\.1:\d+\/)/.exec(buf);
      if (m) resolve({ url: m[1], close: () => child.kill('SIGTERM') });
    });
    child.on('exit', (code) => reject(new Error(`serve.mjs exited (${code}) before listening`)));
  });
}

/** Runs the measurement in headless Chromium (bench/search/page.html). */
async function runBrowser(input) {
  const { chromium } = await import('playwright-core');
  const server = await startServer();
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--js-flags=--expose-gc', '--enable-precise-memory-info'],
  });
  try {
    const page = await browser.newPage();
    page.on('pageerror', (e) => console.error(`page error: ${e.message}`));
    // Cross-origin isolation (COOP + COEP on every response, added here so serve.mjs stays
    // as it is): without it Chromium coarsens performance.now() to 100 µs, with it to 5 µs.
    await page.route('**/*', async (route) => {
      const response = await route.fetch();
      const headers = { ...response.headers(), 'cross-origin-opener-policy': 'same-origin', 'cross-origin-embedder-policy': 'require-corp' };
      await route.fulfill({ response, headers });
    });
    page.on('console', (m) => m.type() === 'error' && console.error(`page console: ${m.text()}`));
    await page.goto(`${server.url}bench/search/page.html`);
    await page.waitForFunction(() => document.body.dataset.state === 'ready' || document.body.dataset.state === 'error', null, { timeout: 60000 });
    if ((await page.evaluate(() => document.body.dataset.state)) !== 'ready') throw new Error(`page failed: ${await page.textContent('body')}`);
    const out = await page.evaluate((inp) => window.runBench(inp), input);
    if (!out.crossOriginIsolated) console.error('warning: page not cross-origin isolated; timer resolution 100 µs');
    return out;
  } finally {
    await browser.close();
    server.close();
  }
}

const f4 = (x) => (x == null ? '–' : x.toFixed(4));
const f3 = (x) => (x == null ? '–' : x.toFixed(3));
const cfg = (c) => Object.entries(c).map(([k, v]) => `${k}=${v}`).join(', ');

function markdown(report) {
  const lines = [
    `Search bench (${report.mode}, ${report.userAgent}, timer resolution ${(report.timerResolutionMs * 1000).toFixed(1)} µs; ${report.catalogItems} items; test queries: ${report.testQueries.clean} clean, ${report.testQueries.typo} typo; k = 10, MRR over the top 100)`,
    '',
    '| engine | version | config | MRR clean | HR@10 clean | NDCG@10 clean | MRR typo | HR@10 typo | NDCG@10 typo | latency median ms | p95 ms | best ms | build ms | heap MiB |',
    '|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const r of report.results) {
    const { clean, typo } = r.quality;
    const heap = (r.heapBytes == null ? '–' : (r.heapBytes / (1 << 20)).toFixed(1)) + (r.wasmBytes == null ? '' : ` (+ ${(r.wasmBytes / (1 << 20)).toFixed(1)} wasm)`);
    lines.push(
      `| ${r.name} | ${r.version} | ${cfg(r.config)} | ${f4(clean.mrr)} | ${f4(clean.hr10)} | ${f4(clean.ndcg10)} | ${f4(typo.mrr)} | ${f4(typo.hr10)} | ${f4(typo.ndcg10)} | ${f3(r.latency.medianMs)} | ${f3(r.latency.p95Ms)} | ${f3(r.latency.bestMs)} | ${r.buildMs.toFixed(0)} | ${heap} |`,
    );
  }
  for (const [kind, c] of Object.entries(report.crossCheck ?? {})) {
    lines.push('', `Cross-check ${kind}: ${c.checked - c.differ}/${c.checked} test ranks equal to vitrine search-eval's.`);
  }
  if (report.tuning) {
    lines.push('', 'Tuning (validation NDCG@10, clean + typo pooled):', '');
    for (const [kind, t] of Object.entries(report.tuning)) {
      lines.push(`- ${KINDS[kind].name}: best of ${t.tried} configs ${f4(t.bestScore)} (${cfg(t.best)}); documented default ${f4(t.defaultScore)} (${cfg(t.defaultConfig)})`);
    }
  }
  return lines.join('\n');
}

/** The metric definitions on hand-computed ranks (1, 2, 11, absent); false on a mismatch. */
function metricsOk() {
  const m = summarise([rankOf([4, 9], 4), rankOf([9, 4], 4), 11, rankOf([1, 2, 3], 4)]);
  const want = { n: 4, mrr: (1 + 1 / 2 + 1 / 11) / 4, hr10: 2 / 4, ndcg10: (1 + 1 / Math.log2(3)) / 4 };
  const ok = Object.keys(want).every((k) => Math.abs(m[k] - want[k]) < 1e-12);
  console.log(`${ok ? 'ok  ' : 'FAIL'} metrics: ${JSON.stringify(m)}`);
  return ok;
}

/**
 * Tiny catalogue, three exact-title queries per engine; exits 1 when an engine misses one.
 * vitrine's engines search the weight file's own catalogue (--model), with titles of its
 * first, middle and last item; the personalised one with a one-event history.
 */
async function smoke(kinds) {
  const catalog = [
    { id: 'A1', title: 'WHITE HANGING HEART T-LIGHT HOLDER', category: 'HOLDER', price: 2.55 },
    { id: 'A2', title: 'WHITE METAL LANTERN', category: 'LANTERN', price: 3.39 },
    { id: 'A3', title: 'CREAM CUPID HEARTS COAT HANGER', category: 'HANGER', price: 2.75 },
    { id: 'A4', title: 'KNITTED UNION FLAG HOT WATER BOTTLE', category: 'BOTTLE', price: 3.39 },
    { id: 'A5', title: 'RED WOOLLY HOTTIE WHITE HEART', category: 'HOTTIE', price: 3.39 },
    { id: 'A6', title: 'SET 7 BABUSHKA NESTING BOXES', category: 'BOX', price: 7.65 },
    { id: 'A7', title: 'GLASS STAR FROSTED T-LIGHT HOLDER', category: 'HOLDER', price: 4.25 },
    { id: 'A8', title: 'JUMBO BAG RED RETROSPOT', category: 'BAG', price: 1.95 },
  ];
  const exact = (cat, ids, history) => validateInputs(cat, ids.map((t) => ({ query: cat.find((c) => c.id === t).title.toLowerCase(), target: t, variant: 'clean', split: 'test', history })));
  const small = exact(catalog, ['A1', 'A4', 'A8']);
  let own = null;
  if (kinds.some((k) => VITRINE_KINDS.has(k))) {
    vitrineSettings.model = modelPath();
    const cat = await vitrineCatalog();
    const ids = [0, cat.length >> 1, cat.length - 1].map((i) => cat[i].id);
    own = exact(cat, ids, [{ item: cat[1].id, kind: 'purchase', at: 1.3e9 }]);
  }
  let failed = metricsOk() ? 0 : 1;
  for (const kind of kinds) {
    const e = KINDS[kind].make(KINDS[kind].defaultConfig, versionOf(kind));
    const { catalog: cat, queries } = VITRINE_KINDS.has(kind) ? own : small;
    await e.build(cat);
    for (const q of queries) {
      let list = e.search(q.query, 10, q);
      if (list && typeof list.then === 'function') list = await list;
      const ok = Array.isArray(list) && list.length > 0 && list.includes(q.target);
      if (!ok) failed++;
      console.log(`${ok ? 'ok  ' : 'FAIL'} ${e.name}: "${q.query}" -> [${(list || []).join(', ')}] (target ${q.target})`);
    }
  }
  if (failed) {
    console.error(`search smoke: ${failed} failure(s)`);
    process.exit(1);
  }
  console.log('search smoke: ok');
}

async function main() {
  const kinds = opt('--engines', Object.keys(KINDS).join(',')).split(',');
  for (const k of kinds) if (!KINDS[k]) throw new Error(`unknown engine ${k} (known: ${Object.keys(KINDS).join(', ')})`);
  if (flag('--smoke')) return smoke(kinds);
  if (kinds.some((k) => VITRINE_KINDS.has(k))) vitrineSettings.model = modelPath();
  const inputs = path.resolve(opt('--inputs', path.join(ROOT, 'artifacts/search')));
  const outFile = path.resolve(opt('--out', path.join(ROOT, 'artifacts/search-bench.json')));
  const rounds = Number(opt('--rounds', '3'));
  const warmup = Number(opt('--warmup', '50'));
  const catalogText = readBounded(path.join(inputs, 'catalog.json'));
  const queriesText = readBounded(path.join(inputs, 'queries.jsonl'));
  const { catalog, queries } = validateInputs(JSON.parse(catalogText), parseQueriesJsonl(queriesText));
  const valid = queries.filter((q) => q.split === 'valid');
  const test = queries.filter((q) => q.split === 'test');
  if (!test.length) throw new Error('no test queries');
  const versions = Object.fromEntries(kinds.map((k) => [k, versionOf(k)]));
  const tuning = {};
  const configs = {};
  for (const k of kinds) {
    if (flag('--no-tune') || !valid.length || KINDS[k].grid().length === 1) configs[k] = KINDS[k].defaultConfig;
    else {
      const t0 = performance.now();
      const tuned = JSON.stringify(valid.map((q) => [q.query, q.target, q.variant]));
      tuning[k] = await tuneCached(k, versions[k], catalog, valid, catalogText + '\0' + tuned);
      configs[k] = tuning[k].best;
      const how = tuning[k].cached ? 'from the tuning cache' : `in ${((performance.now() - t0) / 1000).toFixed(1)} s`;
      console.error(`tuned ${KINDS[k].name} ${how}: ${cfg(configs[k])}`);
    }
  }
  const mode = flag('--browser') ? 'browser' : 'node';
  let results;
  let env = { userAgent: `node ${process.version}`, timerResolutionMs: timerResolution() };
  if (mode === 'browser') ({ results, ...env } = await runBrowser({ catalog, queries: test, kinds, configs, versions, rounds, warmup, model: vitrineSettings.model }));
  else results = await measure(kinds.map((k) => KINDS[k].make(configs[k], versions[k])), catalog, test, { rounds, warmup, memory: nodeMemory });
  const check = crossCheck(results, test);
  for (const r of results) delete r.ranks;
  const count = (v) => test.filter((q) => q.variant === v).length;
  const vitrine = kinds.some((k) => VITRINE_KINDS.has(k)) ? { model: vitrineSettings.model, personalize: test.find((q) => q.vitrine)?.vitrine.personalize ?? null } : null;
  const report = { mode, ...env, catalogItems: catalog.length, testQueries: { clean: count('clean'), typo: count('typo') }, validQueries: valid.length, rounds, warmup, vitrine, crossCheck: check, tuning: Object.keys(tuning).length ? tuning : null, results };
  fs.mkdirSync(path.dirname(outFile), { recursive: true });
  fs.writeFileSync(outFile, JSON.stringify(report, null, 2) + '\n');
  console.log(markdown(report));
  console.error(`wrote ${outFile}`);
}

main().catch((e) => {
  console.error(`search bench: ${e.message}`);
  process.exit(2);
});
