// Cold start of one engine (driven by run.mjs in a fresh browser context per load, so
// nothing is cached): from navigation start (performance.now() = 0) to the first
// recommendation for the reference history, with the moments on the way: engine code
// imported, model ready, first result. Resource timing lists what was downloaded.
// Query: ?engine=vitrine|vitrine-main|ort|ort-int8|tfjs|none&dir=artifacts/engines/4000/&model=www/models/synthetic-4000.vitrine
// `vitrine` is the public loader (www/vitrine.js load(): Web Worker, default options);
// `vitrine-main` the same without the Worker; `vitrine-steps` the main-thread path
// step by step (&backend=simd skips the load-time backend measurement); `none` no engine
// (the page's own cost). &int8=1: an int8 file, which vitrine scores with its int8
// kernels: its first recommendation must share 80% of the reference's top-k (page.mjs's
// INT8_OVERLAP) instead of equalling it; the rivals' must still equal it. vitrine records
// the reference history by the store's item ids (reference.json's), as a page does: the
// catalogue, which load() makes on first read, is not read here.
import { ROOT, jsonOf, refEvents, loadOrt, loadTf } from './engines.mjs';

const params = new URLSearchParams(location.search);
const engine = params.get('engine') || 'vitrine';
const dir = new URL(params.get('dir') || 'artifacts/engines/4000/', ROOT).href;
const modelUrl = new URL(params.get('model') || 'www/models/synthetic-4000.vitrine', ROOT).href;
const status = document.querySelector('[data-testid="bench-status"]');
// &pkg=DIR/: vitrine's package from DIR (relative to the repository root) instead of the
// default build, for an A/B of two builds in one run (run.mjs --cold-pkg-b).
const pkgUrl = params.get('pkg') ? new URL(`${params.get('pkg')}vitrine.js`, ROOT).href : undefined;
// &www=DIR/: the loader (vitrine.js, worker.js, ...) from DIR, a copy of www/ (run.mjs
// --cold-www-b): an A/B of two loaders.
const loaderUrl = new URL(`${params.get('www') || 'www/'}vitrine.js`, ROOT).href;
try {
  const marks = { moduleStart: performance.now() };
  const ref = await jsonOf(`${dir}reference.json`);
  const events = refEvents(ref);
  if (events.some((e) => typeof e.id !== 'string')) throw new Error('reference.json has no item ids: export it again (vitrine export-onnx)');
  let top;
  if (engine === 'vitrine' || engine === 'vitrine-main') {
    const { load } = await import(loaderUrl);
    marks.imported = performance.now();
    const v = await load(modelUrl, { worker: engine === 'vitrine', ...(pkgUrl ? { pkgUrl } : {}) });
    marks.ready = performance.now();
    // By the store's ids, as a page records them (the catalogue, made on first read, is
    // not needed for a recommendation).
    const kindName = Object.fromEntries(Object.entries(ref.kinds).map(([n, i]) => [i, n]));
    await Promise.all(events.map((e) => v.record({ item: e.id, type: kindName[e.kind], at: e.at })));
    marks.recorded = performance.now();
    const res = await v.recommend({ k: ref.k, excludeSeen: false });
    top = res.map((r) => r.index);
  } else if (engine === 'ort' || engine === 'ort-int8' || engine === 'tfjs') {
    const e = engine === 'tfjs' ? await loadTf(dir, ref) : await loadOrt(dir, ref, { threads: 1, head: false, int8: engine === 'ort-int8' });
    marks.ready = performance.now();
    top = (await e.recommend(events)).indices;
  } else if (engine === 'vitrine-steps') {
    // Where vitrine's cold start goes: the main-thread path of load(), step by step.
    const { packageUrls } = await import('../../www/vitrine.js');
    const [mod, bytes] = await Promise.all([
      import(packageUrls(params.get('simd') || 'auto', pkgUrl)[0]).then((m) => { marks.pkgImported = performance.now(); return m; }),
      fetch(modelUrl).then((r) => r.arrayBuffer()).then((b) => { marks.weightsFetched = performance.now(); return new Uint8Array(b); }),
    ]);
    await mod.default();
    marks.wasmInstantiated = performance.now();
    const backend = params.get('backend') || undefined;
    const rec = await mod.Recommender.fromBytes(bytes, { storage: 'memory', ...(backend ? { backend } : {}) });
    marks.ready = performance.now();
    marks.activeBackend = rec.backend;
    // load()'s main-thread mode packs the catalogue on first read only: not here.
    const kindName = Object.fromEntries(Object.entries(ref.kinds).map(([n, i]) => [i, n]));
    for (const e of events) rec.record({ item: e.id, type: kindName[e.kind], at: e.at });
    marks.recorded = performance.now();
    top = (await rec.recommend({ k: ref.k, excludeSeen: false })).map((r) => r.index);
  } else if (engine === 'none') {
    top = ref.top.map((t) => t.index); // the page itself, no engine: the baseline
  } else throw new Error(`unknown engine ${engine}`);
  marks.first = performance.now();
  const want = ref.top.map((t) => t.index);
  const quantised = (params.get('int8') === '1' && engine.startsWith('vitrine')) || engine === 'ort-int8';
  const shared = top.filter((i) => want.includes(i)).length / want.length;
  if (quantised ? !(top.length === want.length && shared >= 0.8) : top.length !== want.length || top.some((i, j) => i !== want[j])) {
    throw new Error(`${engine}: first recommendation differs from the reference (shared ${shared})`);
  }
  const resources = performance.getEntriesByType('resource').map((r) => ({ url: r.name, bytes: r.encodedBodySize, ms: r.duration }));
  document.querySelector('[data-testid="bench-result"]').textContent = JSON.stringify({ engine, marks, resources });
  status.textContent = 'done';
  document.body.dataset.state = 'done';
} catch (e) {
  console.error(e);
  status.textContent = `failed: ${e?.message ?? e}`;
  document.body.dataset.state = 'error';
}

