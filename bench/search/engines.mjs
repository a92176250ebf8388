// Search engines under test, as pluggable adapters (Node and browser: bare imports resolve
// from bench/search/node_modules in Node and through page.html's import map in Chromium).
//
// An engine is a plain object
//   { name, version, config, build(catalog), search(query, k) -> [catalogIndex, …] }
// - build(catalog) indexes the catalogue (array of { id, title, category, price }); it may
//   return a promise. It is called once, before any search.
// - search(query, k) returns at most k catalogue indices (positions in the catalog array),
//   best first. It should be synchronous (a promise is awaited, and its await is timed).
// - config is a JSON-serialisable description of the settings, printed in the report.
//
// - search(query, k, record) may read `record` (the query record: its `history`, ids
//   oldest first); the JS libraries ignore it.
//
// A kind (an entry of KINDS) makes engines: { name, make(config, version), defaultConfig,
// grid() }. defaultConfig is the configuration the library's documentation shows for this
// kind of search; grid() lists the configurations tried on the validation queries (the
// default first, so it wins ties; a grid of one is not tuned). To add an engine, add a kind
// here and its package version in run.mjs's VERSION_OF.
import MiniSearch from 'minisearch';
import { create, insertMultiple, search as oramaSearch } from '@orama/orama';

const IN_NODE = typeof window === 'undefined';
/** Where vitrine's engines read the weight file: a path relative to the repository root. */
export const vitrineSettings = { model: 'www/models/online-retail.vitrine' };
/** Namespace of the bench's in-memory history (any fixed string: storage is 'memory'). */
const NAMESPACE = 'vitrine-search-bench';
/**
 * History limits of the bench's store: the largest age limit the store allows (3,650
 * days; the log spans a year) and no dedup window (the records hold what the model saw).
 * The histories come from a 2011 log, so each is shifted in time, gaps kept, to end a
 * minute before now (`shiftToNow`), as if the shopper had just browsed.
 */
const HISTORY_LIMITS = { maxEvents: 200, maxBytes: 64 * 1024, maxAgeDays: 3650, dedupWindowSecs: 0 };

/** `events` moved in time so that the newest is a minute ago; the gaps between them kept. */
function shiftToNow(events) {
  const newest = Math.max(...events.map((e) => e.at));
  const shift = Date.now() / 1000 - 60 - newest;
  return events.map((e) => ({ item: e.item, kind: e.kind, at: e.at + shift }));
}

let vitrinePkg = null;

/** A repository file's URL (relative to this module: bench/search/ is two levels down). */
const repoUrl = (rel) => new URL(`../../${rel}`, import.meta.url);

/**
 * vitrine's web package (pkg/, scripts/build-wasm.sh), initialised once: in Node from the
 * wasm bytes (`initSync`), in the browser through the page's import map (`vitrine`) and
 * its default `init()`. Resolves { module, wasm } (wasm: the instance's exports).
 */
async function loadVitrine() {
  if (vitrinePkg) return vitrinePkg;
  let module;
  let wasm;
  if (IN_NODE) {
    const fs = await import('node:fs');
    const js = repoUrl('pkg/vitrine.js');
    if (!fs.existsSync(js)) throw new Error('vitrine: no pkg/vitrine.js (run bash scripts/build-wasm.sh)');
    module = await import(js.href);
    wasm = module.initSync({ module: fs.readFileSync(repoUrl('pkg/vitrine_bg.wasm')) });
  } else {
    module = await import('vitrine');
    wasm = await module.default();
  }
  vitrinePkg = { module, wasm };
  return vitrinePkg;
}

/** The weight file's bytes (vitrineSettings.model: repository-relative, or absolute in Node). */
async function readModel() {
  const rel = vitrineSettings.model;
  if (IN_NODE) {
    const [fs, path] = await Promise.all([import('node:fs'), import('node:path')]);
    const file = path.isAbsolute(rel) ? rel : repoUrl(rel);
    if (!fs.existsSync(file)) throw new Error(`vitrine: no weight file at ${rel} (cargo run --release -- train)`);
    return fs.readFileSync(file);
  }
  const res = await fetch(repoUrl(rel));
  if (!res.ok) throw new Error(`vitrine: cannot fetch the weight file ${rel} (HTTP ${res.status})`);
  return new Uint8Array(await res.arrayBuffer());
}

/** Loads the weight file into a `Recommender` (CPU SIMD backend, in-memory history). */
async function loadRecommender() {
  const { module } = await loadVitrine();
  return module.Recommender.fromBytes(await readModel(), { backend: 'simd', storage: 'memory', namespace: NAMESPACE, historyLimits: HISTORY_LIMITS });
}

/** The weight file's own catalogue in the bench's format (for --smoke). */
export async function vitrineCatalog() {
  const rec = await loadRecommender();
  const c = rec.catalog();
  rec.free();
  return c.ids.map((id, i) => ({ id, title: c.titles[i], category: c.categories[i], price: c.prices[i] }));
}

/** Throws unless `catalog` lists the model's items, in the model's order. */
function checkCatalog(rec, catalog) {
  const ids = rec.catalog().ids;
  const n = Math.min(ids.length, catalog.length);
  let i = 0;
  while (i < n && ids[i] === catalog[i].id) i++;
  if (i === n && ids.length === catalog.length) return;
  const at = i < n ? `; item ${i} is ${JSON.stringify(catalog[i].id)} here, ${JSON.stringify(ids[i])} in the model` : '';
  throw new Error(
    `vitrine: the catalogue (${catalog.length} items) is not the weight file's (${vitrineSettings.model}: ${ids.length} items${at}); ` +
      'write the inputs from this model: vitrine search-eval --model M --write-queries DIR',
  );
}

/**
 * vitrine's `search()` from its web package over the weight file's index (the catalogue
 * must be the model's). config.personalize: 0 = text only (no history is set); 'default'
 * = the built-in weight (the option left out), each query's `record.history` stored
 * before the call, as the page's local storage would hold it — the history's JSON is
 * built once per record, its parse is inside the timed call (the browser reads storage
 * on every search). Facets are off (the other engines compute none).
 */
export function makeVitrine(config, version) {
  let rec = null;
  let wasm = null;
  const personal = config.personalize !== 0;
  const options = { k: 10, facets: false };
  if (!personal) options.personalize = 0;
  const stored = new WeakMap();
  const historyJson = (record) => {
    let s = stored.get(record);
    if (s === undefined) {
      const events = shiftToNow(record?.history ?? []);
      s = events.length ? JSON.stringify({ schema: 1, namespace: NAMESPACE, events }) : null;
      if (record) stored.set(record, s);
    }
    return s;
  };
  return {
    kind: personal ? 'vitrine-personalized' : 'vitrine',
    name: personal ? 'vitrine (personalised)' : 'vitrine (text)',
    version,
    config,
    async build(catalog) {
      ({ wasm } = await loadVitrine());
      rec = await loadRecommender();
      checkCatalog(rec, catalog);
    },
    search(query, k, record) {
      if (personal) rec.setStoredHistory(historyJson(record));
      options.k = k;
      const hits = rec.search(query, options).results;
      const out = new Array(hits.length);
      for (let j = 0; j < hits.length; j++) out[j] = hits[j].index;
      return out;
    },
    /** The wasm instance's memory (shared by every vitrine engine of this page). */
    wasmBytes: () => wasm.memory.buffer.byteLength,
  };
}

const docs = (catalog) => catalog.map((it, i) => ({ i, title: it.title, category: it.category ?? '' }));

/** Cartesian product of { key: [values] } as a list of objects, in key order. */
export function product(axes) {
  return Object.entries(axes).reduce((acc, [k, vs]) => acc.flatMap((a) => vs.map((v) => ({ ...a, [k]: v }))), [{}]);
}

/**
 * MiniSearch (https://lucaong.github.io/minisearch/): fields title and category, BM25+,
 * search options per config:
 * - prefix: 'all' (every term, `prefix: true`) or 'last' (the last query term only, the
 *   documented function form `(term, i, terms) => i === terms.length - 1`);
 * - fuzzy: max edit distance as a fraction of the term length (MiniSearch rounds
 *   `length × fuzzy`; 0.2 = 1 edit from 3 letters, 2 from 8); fuzzyMinLength: terms
 *   shorter than this get no fuzzy matching (the documented `term => term.length > 3 ? 0.2
 *   : null` form);
 * - titleBoost: `boost: { title }`; combineWith: 'OR' (default) or 'AND'.
 */
export function makeMiniSearch(config, version) {
  let ms = null;
  const { prefix, fuzzy, fuzzyMinLength, titleBoost, combineWith } = config;
  const searchOptions = {
    prefix: prefix === 'last' ? (_term, i, terms) => i === terms.length - 1 : true,
    fuzzy: fuzzyMinLength > 1 ? (term) => (term.length >= fuzzyMinLength ? fuzzy : null) : fuzzy,
    boost: { title: titleBoost },
    combineWith,
  };
  return {
    name: 'MiniSearch',
    version,
    config,
    build(catalog) {
      ms = new MiniSearch({ idField: 'i', fields: ['title', 'category'], searchOptions });
      ms.addAll(docs(catalog));
    },
    search(query, k) {
      const hits = ms.search(query);
      const n = Math.min(k, hits.length);
      const out = new Array(n);
      for (let j = 0; j < n; j++) out[j] = hits[j].id;
      return out;
    },
  };
}

/**
 * Orama (https://docs.orama.com/): schema { title, category } (strings), BM25, prefix
 * matching of every term (Orama's default, `exact: false`); per config:
 * - tolerance: max Levenshtein distance (`tolerance`), 0–2;
 * - titleBoost: `boost: { title }`;
 * - threshold: 1 = documents matching any term (Orama's default), 0 = only documents that
 *   match every term;
 * - stemming: the built-in English stemmer (`components.tokenizer.stemming`), a build-time
 *   setting.
 */
export function makeOrama(config, version) {
  let db = null;
  const params = { term: '', properties: ['title', 'category'], tolerance: config.tolerance, boost: { title: config.titleBoost }, threshold: config.threshold, limit: 10 };
  return {
    name: 'Orama',
    version,
    config,
    async build(catalog) {
      db = create({ schema: { title: 'string', category: 'string' }, components: { tokenizer: { stemming: config.stemming } } });
      const b = insertMultiple(
        db,
        docs(catalog).map((d) => ({ id: String(d.i), title: d.title, category: d.category })),
      );
      if (b && typeof b.then === 'function') await b;
    },
    search(query, k) {
      params.term = query;
      params.limit = k;
      const res = oramaSearch(db, params);
      const map = (r) => r.hits.map((h) => Number(h.id));
      return res && typeof res.then === 'function' ? res.then(map) : map(res);
    },
  };
}

const vitrineKind = (config) => ({
  name: config.personalize === 0 ? 'vitrine (text)' : 'vitrine (personalised)',
  make: makeVitrine,
  defaultConfig: config,
  grid: () => [config],
});

export const KINDS = {
  minisearch: {
    name: 'MiniSearch',
    make: makeMiniSearch,
    // The README's product-search example: prefix on, fuzzy 0.2, title boosted 2.
    defaultConfig: { prefix: 'all', fuzzy: 0.2, fuzzyMinLength: 1, titleBoost: 2, combineWith: 'OR' },
    grid: () =>
      product({ prefix: ['all', 'last'], fuzzy: [0.2, 0.1, 0.3], fuzzyMinLength: [1, 4], titleBoost: [2, 1, 3], combineWith: ['OR', 'AND'] }),
  },
  orama: {
    name: 'Orama',
    make: makeOrama,
    // The typo-tolerance docs' example (tolerance 1) with the title boosted 2.
    defaultConfig: { stemming: false, tolerance: 1, titleBoost: 2, threshold: 1 },
    grid: () => product({ stemming: [false, true], tolerance: [1, 0, 2], titleBoost: [2, 1, 3], threshold: [1, 0] }),
  },
  // vitrine's own settings are chosen in Rust (src/search/, DEFAULT_PERSONALIZE), on the
  // same validation queries; nothing to tune here.
  vitrine: vitrineKind({ personalize: 0 }),
  'vitrine-personalized': vitrineKind({ personalize: 'default' }),
};

