// vitrine.js — main-thread wrapper around vitrine's wasm `Recommender`.
//
// Usage:
//   import { load } from './vitrine.js';
//   const v = await load('/models/store.vitrine', { onProgress: (got, total) => ... });
//   await v.record({ item: 'I42', type: 'view' });
//   const recs = await v.recommend({ k: 8, context: 'I42' });
//
// Design (history and workers): the shopper's history lives in this page's localStorage
// under `vitrine:<namespace or content-hash prefix>:history` and is never sent anywhere.
// With `worker: true` (default) the model runs in a module Web Worker (worker.js), which
// cannot see localStorage: the wasm side runs with `storage: 'memory'`, and every call
// hands it the current stored string; for writes the worker returns the new string and
// this wrapper writes it back — but only if localStorage still holds what it sent
// (otherwise another tab wrote meanwhile: it retries on the fresh value). All history
// rules (cap, age limit, dedup, validation, corrupt-value reset) stay in Rust.
// With `worker: false` the wasm runs here and uses localStorage directly.
// Calls are serialised (one at a time), so read-modify-write is safe within a tab.
//
// The only network requests are the module/wasm files and the weight file itself.
//
// The methods (and which of them write the history) are listed once, in api.js, for this
// wrapper and for worker.js.

import { METHODS, invoke, method } from './api.js';

/** The wasm-pack (`--target web`) builds, relative to this file: plain SIMD128 (every
 * current browser) and SIMD128 + relaxed SIMD (fused multiply-add in the scoring GEMM). */
const PLAIN_PKG = new URL('../pkg/vitrine.js', import.meta.url).href;
const RELAXED_PKG = new URL('../pkg/relaxed/vitrine.js', import.meta.url).href;

/** A 36-byte module whose one function uses `i8x16.relaxed_swizzle`: it validates
 * exactly where the engine supports relaxed SIMD. */
const RELAXED_SIMD_PROBE = new Uint8Array([
  0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 15, 1, 13, 0, 65, 1,
  253, 15, 65, 2, 253, 15, 253, 128, 2, 11,
]);

/**
 * Whether this browser supports wasm relaxed SIMD (feature detection, no download).
 * @returns {boolean}
 */
export function hasRelaxedSimd() {
  try {
    return WebAssembly.validate(RELAXED_SIMD_PROBE);
  } catch {
    return false;
  }
}

/**
 * The wasm package URLs to try, in order, for a `simd` choice: 'auto' (default) tries
 * the relaxed-SIMD build where the browser supports it, then the plain build; 'relaxed'
 * and 'plain' force one (a forced relaxed build still falls back to plain if it fails
 * to load). An explicit `pkgUrl` is used alone.
 * @param {'auto'|'relaxed'|'plain'} [simd]
 * @param {string} [pkgUrl]
 * @returns {string[]}
 */
export function packageUrls(simd = 'auto', pkgUrl) {
  if (pkgUrl) return [new URL(pkgUrl, globalThis.location?.href).href];
  if (!['auto', 'relaxed', 'plain'].includes(simd)) {
    throw new Error(`vitrine: simd must be 'auto', 'relaxed' or 'plain', got ${JSON.stringify(simd)}`);
  }
  if (simd === 'plain' || (simd === 'auto' && !hasRelaxedSimd())) return [PLAIN_PKG];
  return [RELAXED_PKG, PLAIN_PKG];
}

/**
 * Imports and initialises the first package of `urls` that loads; warns for each that
 * does not. Shared by the main-thread mode and worker.js.
 * @param {string[]} urls
 * @returns {Promise<object>} the wasm-bindgen module
 */
export async function importPackage(urls) {
  let last;
  for (const url of urls) {
    try {
      const mod = await import(url);
      await mod.default();
      return mod;
    } catch (e) {
      last = e;
      console.warn(`vitrine: cannot load ${url} (${e?.message ?? e}); trying the next build`);
    }
  }
  throw new Error(`vitrine: no wasm build could be loaded: ${last?.message ?? last}`);
}

// Types of the API's JSON. Each object typedef lists exactly the serde field names of
// its Rust type (tests/js_types.rs fails when they drift): Recommendation, Reason,
// RecommendOptions, Filter, Boost, Promote in src/recommend (SearchOptions = SearchRequest
// and the search result types in src/recommend/search.rs); HistoryLimits in
// src/history.rs; the rest in src/wasm/types.rs.
/**
 * @typedef {'auto'|'webgpu'|'simd'|'scalar'} Backend
 * @typedef {{ item: string, type: 'view'|'cart'|'purchase', at?: number }} HistoryEventIn
 * @typedef {{ item: string, type: string, at: number, title: string|null }} HistoryRow
 * @typedef {{ kind: string, item?: string, title?: string, event?: string, weight?: number }} Reason
 * @typedef {{ item: string, index: number, title: string, category: string,
 *             price: number|null, score: number, reasons: Reason[] }} Recommendation
 * @typedef {{ ids: string[], titles: string[], categories: string[],
 *             prices: (number|null)[], categoryNames: string[] }} Catalog
 * @typedef {{ encodeMs: number, scoreMs: number, finishMs: number, totalMs: number,
 *             backend: string, historyLen: number, calls: number }} Stats
 * @typedef {{ simd: 'relaxed-simd'|'simd128', gpu: boolean, version: string }} BuildInfo
 * @typedef {{ categories?: string[], excludeCategories?: string[],
 *             priceMin?: number|null, priceMax?: number|null }} Filter
 * @typedef {{ ids?: string[], category?: string|null, weight?: number }} Boost
 * @typedef {{ ids?: string[], slots?: number }} Promote
 * @typedef {{ k?: number, context?: string|null, basket?: string[], exclude?: string[],
 *             excludeSeen?: boolean, allowRepurchase?: boolean, filter?: Filter,
 *             boost?: Boost[], promote?: Promote|null, diversity?: number,
 *             newItemsBoost?: number, now?: number|null }} RecommendOptions
 * @typedef {{ maxEvents?: number, maxBytes?: number, halfLifeDays?: number,
 *             maxAgeDays?: number, dedupWindowSecs?: number }} HistoryLimits
 * @typedef {{ k?: number, filter?: Filter, exclude?: string[],
 *             personalize?: number|null, facets?: boolean }} SearchOptions
 * @typedef {{ word: string, term: string, distance: number, prefix: boolean }} MatchedTerm
 * @typedef {{ start: number, end: number }} TitleSpan
 * @typedef {{ kind: 'match'|'history'|'popular', terms?: MatchedTerm[], spans?: TitleSpan[],
 *             item?: string, title?: string, event?: string, weight?: number }} SearchReason
 * @typedef {{ item: string, index: number, title: string, category: string,
 *             price: number|null, score: number, textScore: number,
 *             reasons: SearchReason[] }} SearchResult
 * @typedef {{ name: string, count: number }} CategoryFacet
 * @typedef {{ min: number|null, max: number|null, count: number }} PriceBandFacet
 * @typedef {{ categories: CategoryFacet[], noCategory: number,
 *             priceBands: PriceBandFacet[], noPrice: number }} SearchFacets
 * @typedef {{ word: string, term: string, distance: number }} Correction
 * @typedef {{ didYouMean: string|null, corrections: Correction[],
 *             popularCategory: string|null, popular: SearchResult[] }} NoResults
 * @typedef {{ words: string[], results: SearchResult[], total: number,
 *             personalized: boolean, facets: SearchFacets|null,
 *             suggestions: NoResults|null }} SearchResponse
 */

/**
 * Downloads a URL as bytes, reporting progress.
 * @param {string} url
 * @param {(loaded: number, total: number|null) => void} [onProgress]
 * @returns {Promise<Uint8Array>}
 */
export async function fetchBytes(url, onProgress) {
  const res = await fetch(url, { credentials: 'same-origin' });
  if (!res.ok) throw new Error(`vitrine: cannot download ${url}: HTTP ${res.status}`);
  const lengthHeader = res.headers.get('content-length');
  const total = lengthHeader ? Number(lengthHeader) : null;
  if (!res.body || !res.body.getReader) {
    const buf = new Uint8Array(await res.arrayBuffer());
    onProgress?.(buf.length, total ?? buf.length);
    return buf;
  }
  const reader = res.body.getReader();
  const chunks = [];
  let loaded = 0;
  onProgress?.(0, total);
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    loaded += value.length;
    onProgress?.(loaded, total);
  }
  const out = new Uint8Array(loaded);
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.length;
  }
  return out;
}

/** localStorage, or an in-memory stand-in where it is unavailable (opaque origins). */
function pageStorage() {
  try {
    const s = globalThis.localStorage;
    const probe = '__vitrine_probe__';
    s.setItem(probe, '1');
    s.removeItem(probe);
    return s;
  } catch {
    const m = new Map();
    console.warn('vitrine: localStorage is unavailable; history is kept in memory only');
    return {
      getItem: (k) => (m.has(k) ? m.get(k) : null),
      setItem: (k, v) => void m.set(k, String(v)),
      removeItem: (k) => void m.delete(k),
    };
  }
}

/** Turns whatever the worker/wasm threw into an Error with its message. */
function asError(e) {
  if (e instanceof Error) return e;
  if (e && typeof e.message === 'string') {
    const err = new Error(e.message);
    if (e.name) err.name = e.name;
    return err;
  }
  return new Error(String(e));
}

/** The page-side API; the same for the worker and main-thread modes. */
export class Vitrine {
  /** @param {object} impl internal */
  constructor(impl) {
    this._impl = impl;
    this._queue = Promise.resolve();
    /** @type {string} active backend: 'webgpu' | 'simd' | 'scalar' */
    this.backend = impl.backend;
    /** @type {number} number of catalog items */
    this.nItems = impl.nItems;
    /** @type {string} localStorage key of the history */
    this.storageKey = impl.storageKey;
    /** @type {object} model summary (items, dim, quantization, contentHash, sizeBytes, ...) */
    this.modelInfo = impl.modelInfo;
    /** @type {Catalog} item ids, titles, categories, prices */
    this.catalog = impl.catalog;
    /** @type {string|null} GPU adapter description when the backend is webgpu */
    this.adapterInfo = impl.adapterInfo ?? null;
    /** @type {'worker'|'main'} where the model runs */
    this.mode = impl.mode;
    /** @type {BuildInfo} which wasm build runs (relaxed-SIMD or plain SIMD128) */
    this.build = impl.build;
  }

  _run(fn) {
    const p = this._queue.then(fn, fn);
    this._queue = p.catch(() => {});
    return p.then((r) => {
      this.backend = this._impl.backend;
      return r;
    });
  }

  /** Runs API method `name` (an api.js entry) after the calls before it. */
  _call(name, arg) {
    const m = method(name, 'vitrine');
    return this._run(() => this._impl.call(m, arg));
  }

  /**
   * Records a browsing event (unknown item ids reject).
   * @param {HistoryEventIn} event
   * @returns {Promise<void>}
   */
  record(event) {
    return this._call('record', event);
  }

  /**
   * Recommendations for the local history.
   * @param {RecommendOptions} [options]
   * @returns {Promise<Recommendation[]>}
   */
  recommend(options = {}) {
    return this._call('recommend', options);
  }

  /**
   * Searches the catalogue, personalised by the local history (the query never leaves
   * the device). Rejects with an Error naming search when the weight file has no search
   * index, or for invalid options.
   * @param {string} query what the shopper typed (any text; the last word matches as a prefix)
   * @param {SearchOptions} [options]
   * @returns {Promise<SearchResponse>}
   */
  search(query, options = {}) {
    return this._call('search', [query, options]);
  }

  /** @returns {Promise<HistoryRow[]>} the local history, oldest first */
  history() {
    return this._call('history');
  }

  /** Deletes the local history. @returns {Promise<void>} */
  clearHistory() {
    return this._call('clearHistory');
  }

  /** @returns {Promise<string>} the history as JSON (`{"schema":1,"namespace":…,"events":[{item,kind,at}]}`) */
  exportHistory() {
    return this._call('exportHistory');
  }

  /**
   * Replaces the history with an exported one (validated).
   * @param {string} json
   * @returns {Promise<number>} events kept
   */
  importHistory(json) {
    return this._call('importHistory', json);
  }

  /** @returns {Promise<Stats>} timings of the last recommend() */
  stats() {
    return this._call('stats');
  }

  /** Stops the worker (worker mode) and frees the model. */
  dispose() {
    this._impl.dispose();
  }
}

// Every api.js method has its typed, documented method above.
for (const m of METHODS) {
  if (typeof Vitrine.prototype[m.name] !== 'function') {
    throw new Error(`vitrine: api.js method ${m.name} has no Vitrine method`);
  }
}

/** Main-thread mode: the wasm object itself, using localStorage directly. */
async function mainThreadImpl(bytes, options, pkgUrls) {
  const mod = await importPackage(pkgUrls);
  const rec = await mod.Recommender.fromBytes(bytes, options);
  const impl = {
    mode: 'main',
    get backend() {
      return rec.backend;
    },
    nItems: rec.nItems,
    storageKey: rec.storageKey,
    modelInfo: rec.modelInfo(),
    catalog: rec.catalog(),
    adapterInfo: rec.adapterInfo,
    build: mod.buildInfo(),
    async call(m, arg) {
      return invoke(rec, m, arg);
    },
    dispose() {
      rec.free();
    },
  };
  return impl;
}

/** Worker mode: postMessage RPC; history mirrored from this page's localStorage. */
async function workerImpl(bytes, options, pkgUrls, workerUrl) {
  const worker = new Worker(workerUrl, { type: 'module' });
  let nextId = 1;
  const pending = new Map();
  worker.onmessage = (ev) => {
    const { id, ok, result, error } = ev.data;
    const p = pending.get(id);
    if (!p) return;
    pending.delete(id);
    if (ok) p.resolve(result);
    else p.reject(asError(error));
  };
  worker.onerror = (ev) => {
    const err = new Error(`vitrine worker failed: ${ev.message || 'unknown error'}`);
    for (const p of pending.values()) p.reject(err);
    pending.clear();
  };
  const call = (op, payload, transfer = []) =>
    new Promise((resolve, reject) => {
      const id = nextId++;
      pending.set(id, { resolve, reject });
      worker.postMessage({ id, op, ...payload }, transfer);
    });

  let info;
  try {
    info = await call(
      'load',
      { bytes: bytes.buffer, options: { ...options, storage: 'memory' }, pkgUrls },
      [bytes.buffer],
    );
  } catch (e) {
    worker.terminate();
    throw e;
  }
  const storage = pageStorage();
  const key = info.storageKey;
  let backend = info.backend;

  // Sends `stored`, then writes back what the worker returns, retrying when another tab
  // changed the stored value meanwhile.
  async function sync(m, arg) {
    for (let attempt = 0; ; attempt++) {
      const sent = storage.getItem(key);
      const r = await call('call', { method: m.name, arg, stored: sent });
      backend = r.backend;
      if (storage.getItem(key) !== sent) {
        // Another tab wrote meanwhile: redo a write on top of its value; a read keeps it.
        if (!m.write) return r.result;
        if (attempt < 3) continue;
      }
      if (r.stored !== sent) {
        if (r.stored == null) storage.removeItem(key);
        else storage.setItem(key, r.stored);
      }
      return r.result;
    }
  }

  return {
    mode: 'worker',
    get backend() {
      return backend;
    },
    nItems: info.nItems,
    storageKey: key,
    modelInfo: info.modelInfo,
    catalog: info.catalog,
    adapterInfo: info.adapterInfo,
    build: info.build,
    async call(m, arg) {
      const result = await sync(m, arg);
      if (m.clears) storage.removeItem(key);
      return result;
    },
    dispose() {
      worker.terminate();
    },
  };
}

/**
 * Downloads a weight file and loads it.
 * @param {string} url weight file URL
 * @param {object} [opts]
 * @param {string} [opts.integrity] 'sha256-<hex>' of the file
 * @param {Backend} [opts.backend] scoring backend (default 'auto': the faster of WebGPU and SIMD, measured at load)
 * @param {string} [opts.namespace] history namespace (default: content-hash prefix)
 * @param {HistoryLimits} [opts.historyLimits] cap, size, decay, age and dedup rules of the history
 * @param {(loaded: number, total: number|null) => void} [opts.onProgress] download progress
 * @param {boolean} [opts.worker=true] run the model in a Web Worker
 * @param {'auto'|'relaxed'|'plain'} [opts.simd='auto'] which wasm build: relaxed SIMD where supported, else plain SIMD128
 * @param {string} [opts.pkgUrl] URL of one wasm-pack `vitrine.js` to use instead (overrides `simd`)
 * @returns {Promise<Vitrine>}
 */
export async function load(url, opts = {}) {
  const {
    integrity,
    backend,
    namespace,
    historyLimits,
    onProgress,
    worker = true,
    simd = 'auto',
    pkgUrl,
  } = opts;
  const pkgUrls = packageUrls(simd, pkgUrl);
  const bytes = await fetchBytes(url, onProgress);
  const options = {};
  if (integrity !== undefined) options.integrity = integrity;
  if (backend !== undefined) options.backend = backend;
  if (namespace !== undefined) options.namespace = namespace;
  if (historyLimits !== undefined) options.historyLimits = historyLimits;
  const useWorker = worker && typeof Worker !== 'undefined';
  const impl = useWorker
    ? await workerImpl(bytes, options, pkgUrls, new URL('./worker.js', import.meta.url))
    : await mainThreadImpl(bytes, options, pkgUrls);
  return new Vitrine(impl);
}
