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
// A kind (an entry of KINDS) makes engines: { name, make(config, version), defaultConfig,
// grid() }. defaultConfig is the configuration the library's documentation shows for this
// kind of search; grid() lists the configurations tried on the validation queries (the
// default first, so it wins ties). To add an engine (vitrine's wasm `search()`), add a kind
// here and its package version in run.mjs's VERSION_OF.
import MiniSearch from 'minisearch';
import { create, insertMultiple, search as oramaSearch } from '@orama/orama';

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
};

