// vitrine.js — main-thread wrapper around vitrine's wasm `Recommender`.
//
// Usage:
//   import { load } from './vitrine.js';
//   const v = await load('/models/store.vitrine', { onProgress: (got, total) => ... });
//   await v.record({ item: 'I42', type: 'view' });
//   const recs = await v.recommend({ k: 8, context: 'I42' });
//
// Design (history and workers): the shopper's history lives in this page's localStorage
// under `vitrine:v2:<namespace>:history` — one per store (the namespace defaults to the
// page's origin), never per model, so a retrained model keeps it — and is never sent
// anywhere. At load, old per-model keys (`vitrine:<hash prefix>:history`) are merged in and
// removed, and events of items the model does not know are dropped and counted
// (`historyInfo()`). With `worker: true` (default) the model runs in a module Web Worker
// (worker.js), which cannot see localStorage: the wasm side runs with `storage: 'memory'`,
// every call hands it the current stored string and takes the new one back. With
// `worker: false` the wasm runs here and uses localStorage directly. All history rules
// (cap, age limit, dedup, validation, corrupt-value reset, merge) stay in Rust.
//
// Cross-tab writes are lossless: every write (record, importHistory, clearHistory, the
// load-time migration) runs under a Web Lock named after the storage key
// (`navigator.locks.request`, where available), read-modify-write. If the stored value
// still changed under it (no Web Locks, or an older vitrine in another tab), the result
// is three-way merged with the other tab's value in Rust (`HistoryStore::merge`: theirs
// minus what this call removed plus what it added) and the check repeats. Neither is
// enough alone: Chromium's localStorage reaches other tabs asynchronously, so a tab can
// read a value that lacks another's write of a moment ago (under the lock too) and
// overwrite it. So each tab also re-applies its writes of the last 30 s, with the same
// merge, whenever another tab changes the value (crossTabRepair); a clear wins. Both
// tabs' events are kept once the tabs have seen each other's writes. The only events ever merged away are the dedup rule's: a repeated
// view (or cart) of an item within `dedupWindowSecs` moves the earlier event; events
// equal in item, kind and time are one. Calls are serialised within a tab.
//
// The only network requests are the module/wasm files and the weight file itself.
//
// The methods (and which of them write the history) are listed once, in api.js, for this
// wrapper and for worker.js.

import { METHODS, invoke, method } from './api.js';
import { unpackCatalog } from './catalog.js';

/** The wasm-pack (`--target web`) builds, relative to this file: plain SIMD128 (every
 * current browser) and SIMD128 + relaxed SIMD (fused multiply-add in the scoring GEMM),
 * each with the WebGPU path and without it ("lean": no wgpu, about 50 KB gzip less). */
const PLAIN_PKG = new URL('../pkg/vitrine.js', import.meta.url).href;
const RELAXED_PKG = new URL('../pkg/relaxed/vitrine.js', import.meta.url).href;
const LEAN_PKG = new URL('../pkg/lean/vitrine.js', import.meta.url).href;
const LEAN_RELAXED_PKG = new URL('../pkg/lean-relaxed/vitrine.js', import.meta.url).href;

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
 * Whether a load with this `backend` option may score on WebGPU: the page has
 * `navigator.gpu` and the backend is not 'simd' or 'scalar'. Where it may not, load()
 * fetches a build without the GPU path. (A browser with `navigator.gpu` but no adapter
 * still gets the GPU build: asking for an adapter first would delay the package's
 * download; the build then scores with SIMD.)
 * @param {Backend} [backend]
 * @returns {boolean}
 */
export function mayUseWebGpu(backend) {
  if (backend === 'simd' || backend === 'scalar') return false;
  return typeof navigator !== 'undefined' && Boolean(navigator.gpu);
}

/**
 * The wasm package URLs to try, in order, for a `simd` choice: 'auto' (default) tries
 * the relaxed-SIMD build where the browser supports it, then the plain build; 'relaxed'
 * and 'plain' force one (a forced relaxed build still falls back to plain if it fails
 * to load). With `gpu` false the builds without the GPU path come first (the same
 * order), then the full ones in case those are missing. An explicit `pkgUrl` is used
 * alone.
 * @param {'auto'|'relaxed'|'plain'} [simd]
 * @param {string} [pkgUrl]
 * @param {boolean} [gpu=true] whether the GPU path is wanted (load() passes
 *   {@link mayUseWebGpu} of its backend)
 * @returns {string[]}
 */
export function packageUrls(simd = 'auto', pkgUrl, gpu = true) {
  if (pkgUrl) return [new URL(pkgUrl, globalThis.location?.href).href];
  if (!['auto', 'relaxed', 'plain'].includes(simd)) {
    throw new Error(`vitrine: simd must be 'auto', 'relaxed' or 'plain', got ${JSON.stringify(simd)}`);
  }
  const relaxed = simd === 'relaxed' || (simd === 'auto' && hasRelaxedSimd());
  const full = relaxed ? [RELAXED_PKG, PLAIN_PKG] : [PLAIN_PKG];
  if (gpu) return full;
  return [...(relaxed ? [LEAN_RELAXED_PKG, LEAN_PKG] : [LEAN_PKG]), ...full];
}

/**
 * Imports and initialises the first package of `urls` that loads; warns for each that
 * does not. Shared by the main-thread mode and worker.js.
 * @param {string[]} urls
 * @returns {Promise<object>} the wasm-bindgen module
 */
export async function importPackage(urls) {
  let last;
  for (const [i, url] of urls.entries()) {
    // The first build's wasm is requested as its glue is imported, not once the glue has
    // run (its init would fetch it only then): the two downloads overlap.
    const wasm = i === 0 ? prefetchWasm(url) : null;
    try {
      const mod = await import(url);
      await mod.default(wasm ? { module_or_path: wasm } : undefined);
      return mod;
    } catch (e) {
      last = e;
      console.warn(`vitrine: cannot load ${url} (${e?.message ?? e}); trying the next build`);
    }
  }
  throw new Error(`vitrine: no wasm build could be loaded: ${last?.message ?? last}`);
}

/**
 * The wasm file of a wasm-pack build (`--target web --out-name vitrine`, as
 * scripts/build-wasm.sh builds them) whose glue is `url`: `vitrine_bg.wasm` beside a
 * `vitrine.js`, the file the glue's init fetches by default; null for a glue of another
 * name (its wasm's name is not known here).
 * @param {string} url
 * @returns {string|null}
 */
export function wasmUrlOf(url) {
  const glue = new URL(url, globalThis.location?.href);
  if (!glue.pathname.endsWith('/vitrine.js')) return null;
  return new URL('vitrine_bg.wasm', glue).href;
}

/** `fetch` of {@link wasmUrlOf}(url), its failure left to the init that awaits it (or
 * dropped with the import's); null where the wasm's URL is not known. */
function prefetchWasm(url) {
  const wasmUrl = wasmUrlOf(url);
  if (wasmUrl === null || typeof fetch !== 'function') return null;
  const res = fetch(wasmUrl);
  res.catch(() => {});
  return res;
}

// Types of the API's JSON. Each object typedef lists exactly the serde field names of
// its Rust type (tests/js_types.rs fails when they drift): Recommendation, Reason,
// RecommendOptions, Filter, Boost, Promote in src/recommend, PageRequest in
// src/recommend/page.rs (SearchOptions = SearchRequest
// and the search result types in src/recommend/search.rs); HistoryLimits in
// src/history.rs; the rest in src/wasm/types.rs.
/**
 * @typedef {'auto'|'webgpu'|'simd'|'scalar'} Backend
 * @typedef {{ item: string, type: 'view'|'cart'|'purchase', at?: number }} HistoryEventIn
 * @typedef {{ item: string, type: string, at: number, title: string|null }} HistoryRow
 * @typedef {{ kind: string, item?: string, title?: string, event?: string, weight?: number,
 *             orders?: number }} Reason
 * @typedef {{ item: string, index: number, title: string, category: string,
 *             price: number|null, score: number, reasons: Reason[] }} Recommendation
 * @typedef {{ ids: string[], titles: string[], categories: string[],
 *             prices: (number|null)[], categoryNames: string[] }} Catalog
 * @typedef {{ encodeMs: number, scoreMs: number, finishMs: number, totalMs: number,
 *             backend: string, historyLen: number, calls: number,
 *             readBackBytes: number, dotForm: 'fused'|'split'|null }} Stats
 * @typedef {{ simd: 'relaxed-simd'|'simd128', gpu: boolean, version: string }} BuildInfo
 * @typedef {{ trained: ('view'|'cart'|'purchase')[]|null,
 *             mapped: Object<string, string> }} ModelKinds
 * @typedef {{ items: number, dim: number, mlpHidden: number[],
 *             quantization: 'f32'|'f16'|'int8', contentHash: string, sizeBytes: number,
 *             formatVersion: number, categories: number, metrics: object,
 *             training: object, kinds: ModelKinds }} ModelInfo
 * @typedef {{ categories?: string[], excludeCategories?: string[],
 *             priceMin?: number|null, priceMax?: number|null, newOnly?: boolean }} Filter
 * @typedef {{ ids?: string[], category?: string|null, weight?: number }} Boost
 * @typedef {{ ids?: string[], slots?: number }} Promote
 * @typedef {{ k?: number, context?: string|null, basket?: string[], exclude?: string[],
 *             excludeSeen?: boolean, allowRepurchase?: boolean, filter?: Filter,
 *             boost?: Boost[], promote?: Promote|null, diversity?: number,
 *             newItemsBoost?: number, now?: number|null }} RecommendOptions
 * @typedef {{ shelves: RecommendOptions[], dedup?: boolean }} PageRequest
 * @typedef {{ maxEvents?: number, maxBytes?: number,
 *             maxAgeDays?: number, dedupWindowSecs?: number }} HistoryLimits
 * @typedef {{ events: number, ids: string[] }} UnknownItems
 * @typedef {{ kept: number, read: number, unknown: UnknownItems,
 *             overLimits: number }} ImportReport
 * @typedef {{ namespace: string, storageKey: string, events: number,
 *             migratedKeys: string[], unknown: UnknownItems,
 *             discarded: string[] }} HistoryInfo
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

/** Longest announced download `fetchBytes` allocates up front (1 GiB); a longer one is
 * gathered chunk by chunk. */
const MAX_PREALLOCATED = 1 << 30;

/**
 * Downloads a URL as bytes, reporting progress. With a `content-length`, the chunks are
 * copied into one buffer of that length as they arrive (no second whole copy at the end,
 * and half the peak memory); a weight file's header, once in, gives the length where
 * it is longer or none is announced (a compressed transfer announces its encoded length;
 * `weightFileLength`); a body longer than that, or without either, goes on in a list of
 * chunks joined at the end.
 * @param {string} url
 * @param {(loaded: number, total: number|null) => void} [onProgress]
 * @returns {Promise<Uint8Array>}
 */
export async function fetchBytes(url, onProgress) {
  return (await streamBytes(url, onProgress)).done;
}

/**
 * Starts downloading a URL (see `fetchBytes`) and hands out the buffer as it fills, for
 * `Recommender.fromStream`, which loads while the file arrives.
 * - `bytes`: the buffer the body is written into, in order, final once `sized` has
 *   resolved: of the length the file's header gives (`weightFileLength`) where that
 *   is longer than the announced `content-length` or none is announced (a compressed
 *   transfer announces its encoded length), else of the announced length; null when
 *   there is none (no length either way, the body past its announced length, no
 *   streaming body).
 * - `sized`: resolves once `bytes` is final (the header is in, or cannot say).
 * - `arrived(end)`: resolves once the first `end` bytes are in `bytes` (to the number of
 *   bytes in by then); rejects once they
 *   never will be there as announced (the body is longer or shorter than its
 *   `content-length` or its header's length: `done` then gives the body as `fetchBytes`
 *   does) or the download failed (its error).
 * - `done`: the whole body, as `fetchBytes` returns it (`bytes` itself when the body was
 *   as announced).
 * @param {string} url
 * @param {(loaded: number, total: number|null) => void} [onProgress]
 * @returns {Promise<{ bytes: Uint8Array|null, sized?: Promise<void>,
 *                     arrived: (end: number) => Promise<void>, done: Promise<Uint8Array> }>}
 */
export async function streamBytes(url, onProgress) {
  const { res, total } = await startDownload(url);
  if (!res.body || !res.body.getReader) {
    const done = res.arrayBuffer().then((b) => {
      const buf = new Uint8Array(b);
      onProgress?.(buf.length, total ?? buf.length);
      return buf;
    });
    return noStream(done);
  }
  const feed = arrivingBytes(url, total);
  pump(res, total, onProgress, feed).catch(() => {}); // its failure is the feed's
  return feed;
}

/** `fetch(url)`, checked: the response and its announced length (null when none). */
async function startDownload(url) {
  const res = await fetch(url, { credentials: 'same-origin' });
  if (!res.ok) throw new Error(`vitrine: cannot download ${url}: HTTP ${res.status}`);
  const lengthHeader = res.headers.get('content-length');
  // A compressed transfer announces its encoded length, not the body's: none then (the
  // load sizes its buffer from the file's header; where the page cannot see the
  // encoding, a cross-origin response that does not expose it, `arrivingBytes` finds the
  // header's length longer than the announced one and takes the header's).
  const encoding = (res.headers.get('content-encoding') ?? '').trim().toLowerCase();
  const encoded = encoding !== '' && encoding !== 'identity';
  return { res, total: lengthHeader && !encoded ? Number(lengthHeader) : null };
}

/**
 * Reads `res`'s body into `sink` (`push(chunk)` each chunk in order, then `end()`, or
 * `fail(error)` and the returned promise rejects), reporting progress: against the
 * announced length (null where none is), and from the moment the file's header is in,
 * against the length it gives (`weightFileLength`) where that is longer (a compressed
 * transfer announces its encoded length, whether or not the page sees the encoding).
 */
async function pump(res, total, onProgress, sink) {
  const reader = res.body.getReader();
  let loaded = 0;
  // The length a sink that sizes itself from the header has found (`arrivingBytes`), or,
  // for a sink that does not (the Worker's), the header's length read here from the first
  // bytes, copied (it may transfer the chunk), where it is longer than the announced one
  // or none is announced (a header over 1 MiB is not read where a length was announced).
  const sizes = 'length' in sink;
  const sizer = sizes ? null : headerSizer(total === null ? MAX_HEADER_BYTES : CHECKED_HEADER_BYTES);
  try {
    onProgress?.(0, total);
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      loaded += value.length; // (before a sink that transfers the chunk empties it)
      if (sizer !== null) {
        const length = sizer.add(value);
        if (length != null && (total === null || length > total)) total = length;
      }
      sink.push(value);
      if (sizes) total = sink.length ?? total;
      onProgress?.(loaded, total);
    }
    sink.end();
  } catch (e) {
    sink.fail(e);
    throw e;
  }
}

/** Longest weight-file header {@link weightFileLength} reads (256 MiB, the wasm
 * reader's `MAX_HEADER_LEN`). */
const MAX_HEADER_BYTES = 256 * 1024 * 1024;

/**
 * The length of the weight file whose first bytes are `head` (at least 8): the file's
 * header length (8 bytes, little-endian), the header (JSON), then the data section, whose
 * end is the largest `data_offsets` end of a tensor. Undefined while `head` holds less
 * than the header; null where the header is not one the loader can size a buffer from
 * (too long, not JSON, offsets missing, or a length over 1 GiB): the load then sees the
 * body as it comes, and the wasm reader reports what is wrong with it.
 * @param {Uint8Array} head
 * @returns {number|null|undefined}
 */
export function weightFileLength(head) {
  if (head.length < 8) return undefined;
  const end = headerEnd(head);
  if (end === null) return null;
  if (head.length < end) return undefined;
  let header;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(head.subarray(8, end)));
  } catch {
    return null;
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header)) return null;
  let data = 0;
  for (const [name, t] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const o = t?.data_offsets;
    if (!Array.isArray(o) || o.length !== 2 || !Number.isSafeInteger(o[1]) || o[1] < 0) return null;
    data = Math.max(data, o[1]);
  }
  const total = end + data;
  return total <= MAX_PREALLOCATED ? total : null;
}

/** Where a weight file's header ends: 8 + the length its first 8 bytes (little-endian)
 * give, or null past `max` bytes of header. */
function headerEnd(head, max = MAX_HEADER_BYTES) {
  const n = new DataView(head.buffer, head.byteOffset, 8).getBigUint64(0, true);
  return n > BigInt(max) ? null : 8 + Number(n);
}

/** Longest header `arrivingBytes` reads to check an announced length (1 MiB): a longer
 * one (a file written before the catalogue left the header) is not parsed a second time
 * here, and its announced length is trusted. */
const CHECKED_HEADER_BYTES = 1 << 20;

/** `chunks` copied one after another into the start of `out`; returns `out`. */
function copyChunks(chunks, out) {
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.length;
  }
  return out;
}

/**
 * Reads a weight file's length from its first bytes as they arrive, chunk by chunk:
 * `add(chunk)` returns undefined until the header is in, then the file's length
 * ({@link weightFileLength}), or null where it cannot be read (not a weight file, a
 * header over `maxHeader` bytes, 256 MiB by default), and the same from then on. Keeps a
 * copy of the header's bytes only (the chunks may be transferred after `add`), joined
 * twice at most.
 * @param {number} [maxHeader]
 */
export function headerSizer(maxHeader = MAX_HEADER_BYTES) {
  let parts = [];
  let have = 0;
  let need = 8;
  let result;
  const join = () => {
    const out = copyChunks(parts, new Uint8Array(have));
    parts = [out];
    return out;
  };
  return {
    add(chunk) {
      let at = 0;
      while (result === undefined && at < chunk.length) {
        const take = Math.min(chunk.length - at, need - have);
        parts.push(chunk.slice(at, at + take));
        have += take;
        at += take;
        if (have < need) break;
        const head = join();
        if (need === 8) {
          const end = headerEnd(head, maxHeader);
          if (end === null) {
            result = null;
            break;
          }
          need = end;
          if (have < need) continue;
        }
        result = weightFileLength(head) ?? null;
      }
      if (result !== undefined) parts = [];
      return result;
    },
  };
}

/**
 * The receiving end of a download of `url` announced as `total` bytes (`content-length`,
 * or null): `push(chunk)` each chunk in order, then `end()`, or `fail(error)`. Hands out
 * `bytes`, `arrived` and `done` as `streamBytes` describes them, `loaded`, the bytes
 * pushed so far, and `sized`, a promise that resolves once `bytes` is final: when the
 * file's header is in, which says the file's length ({@link weightFileLength}). Where
 * that is longer than the announced length (a compressed transfer announces its encoded
 * length; `content-length` may be missing), `bytes` becomes a buffer of the header's
 * length, with what has arrived copied in, and the load goes on as the rest arrives. A
 * chunk past that length moves the rest to a list of chunks, joined at the end (`bytes`
 * is then never complete: `arrived` rejects); so does a header the loader cannot size
 * from, where nothing plausible was announced.
 * @param {string} url
 * @param {number|null} total
 */
export function arrivingBytes(url, total) {
  let whole = Number.isSafeInteger(total) && total > 0 && total <= MAX_PREALLOCATED ? new Uint8Array(total) : null;
  let bytes = whole;
  let chunks = [];
  let loaded = 0;
  // Until the file's header has said its length (or cannot): `sized` waits. With an
  // announced length only a header of at most CHECKED_HEADER_BYTES is read for it.
  let sizing = true;
  let sizedResolve;
  const sized = new Promise((resolve) => {
    sizedResolve = resolve;
  });
  const announced = whole !== null;
  const sizer = headerSizer(announced ? CHECKED_HEADER_BYTES : MAX_HEADER_BYTES);
  let sizedFromHeader = false;
  const settleSize = () => {
    sizing = false;
    sizedResolve();
  };
  // The header's length known (null: it cannot be read, or it was not read): where it
  // is longer than the buffer there is, or there is none (a compressed transfer
  // announces its encoded length, seen or not), a buffer of that length, the bytes so far
  // copied in. (A shorter one keeps the announced buffer: bytes after the data section
  // are the wasm reader's to judge, as before.) Without a buffer then (a body past its
  // announced length, and no length from the header), the body is loaded once whole.
  const resize = (length) => {
    if (length !== null && length >= loaded && (whole === null || length > whole.length)) {
      const sizedBuffer = new Uint8Array(length);
      if (whole) sizedBuffer.set(whole.subarray(0, loaded));
      else {
        copyChunks(chunks, sizedBuffer);
        chunks = [];
      }
      whole = sizedBuffer;
      total = length;
      sizedFromHeader = true;
    }
    bytes = whole;
    settleSize();
    if (!whole && announced) mismatch('longer than');
  };
  // Waiting `arrived` calls, and why the rest never will resolve (once it is known).
  let waiters = [];
  let failure = null;
  const wake = () => {
    waiters = waiters.filter((w) => {
      if (whole && w.end <= loaded) w.resolve(loaded);
      else if (failure) w.reject(failure);
      else return true;
      return false;
    });
  };
  const fail = (e) => {
    failure ??= e;
    wake();
  };
  const mismatch = (what) =>
    fail(new Error(`vitrine: ${url} is ${what} ${sizedFromHeader ? "its header's" : 'its announced'} ${total} bytes; loaded after the download instead`));
  let settle;
  const done = new Promise((resolve, reject) => {
    settle = { resolve, reject };
  });
  done.catch(() => {}); // reported to whoever awaits it
  return {
    get loaded() {
      return loaded;
    },
    arrived(end) {
      if (whole && end <= loaded) return Promise.resolve(loaded);
      if (failure) return Promise.reject(failure);
      return new Promise((resolve, reject) => waiters.push({ end, resolve, reject }));
    },
    done,
    get bytes() {
      return bytes;
    },
    /** The file's length once known from its header (null before, and when it is not). */
    get length() {
      return sizedFromHeader ? total : null;
    },
    sized,
    push(value) {
      if (whole && loaded + value.length <= whole.length) {
        whole.set(value, loaded);
      } else {
        if (whole) chunks.push(whole.subarray(0, loaded));
        whole = null;
        chunks.push(value);
        // Past the length announced or read from the header (not while sizing: none yet).
        if (!sizing) mismatch('longer than');
      }
      loaded += value.length;
      if (sizing) {
        const length = sizer.add(value);
        if (length !== undefined) resize(length);
      }
      wake();
    },
    end() {
      // A body that ended before its header did: no length from it.
      if (sizing) resize(null);
      if (whole) {
        if (loaded === whole.length) return settle.resolve(whole);
        mismatch('shorter than');
        return settle.resolve(whole.slice(0, loaded));
      }
      settle.resolve(copyChunks(chunks, new Uint8Array(loaded)));
    },
    fail(e) {
      fail(e);
      if (sizing) settleSize();
      settle.reject(e);
    },
  };
}

/** `streamBytes`'s answer for a body had only whole. */
function noStream(done) {
  done.catch(() => {}); // reported to whoever awaits it
  return { bytes: null, arrived: () => Promise.reject(new Error('vitrine: no streamed body')), done };
}

/**
 * Loads a weight file from a download started by `streamBytes`: while it arrives
 * (`Recommender.fromStream`) when its length is known (announced, or read from its
 * header once that is in), else once it is in (`fromBytes`). A body longer or shorter
 * than that, whose load stopped, is loaded whole instead, so the result or error is the
 * one `fromBytes` gives for what arrived.
 * @param {any} mod the wasm package
 * @param {{ bytes: Uint8Array|null, sized?: Promise<void>, arrived: (end: number) => Promise<void>, done: Promise<Uint8Array> }} stream
 * @param {object} options `fromBytes` options
 */
export async function loadStream(mod, stream, options) {
  // The buffer is final once the file's header is in (`arrivingBytes`).
  await stream.sized;
  // (A package from before `fromStream`, named by `pkgUrl`, loads the whole file.)
  if (!stream.bytes || typeof mod.Recommender.fromStream !== 'function') {
    return mod.Recommender.fromBytes(await stream.done, options);
  }
  try {
    return await mod.Recommender.fromStream(stream.bytes, stream.arrived, options);
  } catch (e) {
    // The download's own error, if it failed.
    const bytes = await stream.done;
    if (bytes === stream.bytes) throw e;
    return mod.Recommender.fromBytes(bytes, options);
  }
}

/** Largest export `importHistory` accepts, in characters (checked before anything is
 * parsed or sent to the worker); the same limit as the wasm side's. */
export const MAX_IMPORT_CHARS = 1 << 20;

/** Most old-layout keys handed to the migration per load (the rest: next load). */
const MAX_LEGACY_KEYS = 64;

/** Old per-model history keys: `vitrine:<namespace without ':'>:history`. */
const LEGACY_KEY = /^vitrine:[^:]+:history$/;

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
      key: (i) => [...m.keys()][i] ?? null,
      get length() {
        return m.size;
      },
    };
  }
}

/** Every key of `storage` (a snapshot). */
function storageKeys(storage) {
  const keys = [];
  for (let i = 0; i < storage.length; i++) {
    const k = storage.key(i);
    if (k !== null) keys.push(k);
  }
  return keys;
}

/** How long this tab re-applies its own recent writes when another tab overwrites them. */
const REPAIR_WINDOW_MS = 30000;

/** How long a tab re-applies its own clear to another tab's write (see crossTabRepair). */
const CLEAR_REPAIR_MS = 5000;

/** Most recent writes remembered for that. */
const MAX_PENDING = 64;

/**
 * Cross-tab repair. Chromium's localStorage is eventually consistent between tabs: a tab
 * can read (even under a Web Lock) a value that lacks another tab's write of a moment ago
 * and overwrite it. So each tab remembers its recent writes as (base, mine) pairs and,
 * whenever another tab changes the stored value (`storage` event), re-applies them to it
 * with the three-way merge (`merge(base, mine, theirs)`, in Rust) and stores the result
 * if anything of its own was missing. A clear anywhere (the value removed) wins: the
 * pairs are forgotten. This tab's own clear is remembered the same way for
 * CLEAR_REPAIR_MS, as the pair (value before, nothing): a tab that had not yet seen the
 * clear and writes back the events it last read gets them removed again (the merge drops
 * what the clear removed and keeps that tab's new events).
 * @param {Storage} storage
 * @param {string} key
 * @param {(base: string|null, mine: string|null, theirs: string|null) => Promise<string|null>} merge
 */
function crossTabRepair(storage, key, merge) {
  let pending = [];
  let running = null;
  let again = false;
  const note = (base, mine) => {
    if (base === mine) return;
    const last = pending[pending.length - 1];
    if (last && last.mine === base && !last.clear) {
      last.mine = mine;
      last.at = Date.now();
    } else {
      pending.push({ base, mine, at: Date.now() });
      if (pending.length > MAX_PENDING) pending.shift();
    }
  };
  const forget = () => {
    pending = [];
  };
  // This tab cleared the history, which held `base`: earlier pairs are moot, and for
  // CLEAR_REPAIR_MS the clear itself is re-applied to a stale write from another tab (one
  // that had not yet seen it). Only that long: a tab that has seen the clear and brings
  // events back on purpose (an import) must not lose them to it, and another tab's clear
  // arrives within milliseconds.
  const cleared = (base) => {
    pending = [];
    if (base !== null) pending.push({ base, mine: null, at: Date.now(), clear: true });
  };
  // Re-applies the pending writes to the stored value; false when the value changed
  // while the merge ran (this tab's own write, which fires no `storage` event here), so
  // the caller tries again.
  async function repairOnce() {
    const now = Date.now();
    pending = pending.filter((p) => now - p.at < (p.clear ? CLEAR_REPAIR_MS : REPAIR_WINDOW_MS));
    if (!pending.length) return true;
    return withLock(key, async () => {
      const cur = storage.getItem(key);
      let out = cur;
      for (const p of pending) out = await merge(p.base, p.mine, out);
      if (storage.getItem(key) !== cur) return false;
      if (out !== cur) {
        if (out == null) storage.removeItem(key);
        else storage.setItem(key, out);
      }
      return true;
    });
  }
  const schedule = () => {
    if (running) {
      again = true;
      return;
    }
    running = (async () => {
      for (let tries = 0; tries < MAX_PENDING; tries++) {
        again = false;
        try {
          if (!(await repairOnce())) again = true;
        } catch (e) {
          console.warn(`vitrine: cross-tab history repair failed: ${e?.message ?? e}`);
        }
        if (!again) break;
      }
      running = null;
    })();
  };
  const onStorage = (ev) => {
    if (ev.key !== null && ev.key !== key) return;
    if (ev.key === null || ev.newValue === null) forget();
    else schedule();
  };
  globalThis.addEventListener?.('storage', onStorage);
  return {
    note,
    cleared,
    dispose: () => globalThis.removeEventListener?.('storage', onStorage),
  };
}

/**
 * Runs `fn` holding the Web Lock `name` (all tabs of the origin), or directly where the
 * browser has no Web Locks.
 * @template T
 * @param {string} name
 * @param {() => Promise<T>} fn
 * @returns {Promise<T>}
 */
function withLock(name, fn) {
  const locks = globalThis.navigator?.locks;
  return locks?.request ? locks.request(name, () => fn()) : fn();
}

/**
 * The queued writes `next()` hands over (`{ m, arg, resolve, reject }`, see
 * `Vitrine._pump`), one by one, each through `write(m, arg)` and settling on its own,
 * under one hold of the Web Lock `name`.
 * @param {string} name
 * @param {() => ({ m: object, arg: any, resolve: Function, reject: Function }|null)} next
 * @param {(m: object, arg: any) => Promise<any>} write
 * @returns {Promise<void>}
 */
function writeQueued(name, next, write) {
  return withLock(name, async () => {
    for (let op = next(); op; op = next()) {
      try {
        op.resolve(await write(op.m, op.arg));
      } catch (e) {
        op.reject(e);
      }
    }
  });
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
    /** Calls waiting their turn: `{ m, arg, resolve, reject }` (see `_pump`). */
    this._pending = [];
    this._pumping = false;
    /** @type {string} active backend: 'webgpu' | 'simd' | 'scalar' */
    this.backend = impl.backend;
    /** @type {number} number of catalog items */
    this.nItems = impl.nItems;
    /** @type {string} localStorage key of the history */
    this.storageKey = impl.storageKey;
    /** @type {ModelInfo} model summary (items, dim, quantization, contentHash, sizeBytes,
     *  the event kinds trained and what each untrained kind reads, ...) */
    this.modelInfo = impl.modelInfo;
    /** @type {string|null} GPU adapter description when the backend is webgpu */
    this.adapterInfo = impl.adapterInfo ?? null;
    /** @type {'worker'|'main'} where the model runs */
    this.mode = impl.mode;
    /** @type {BuildInfo} which wasm build runs (relaxed-SIMD or plain SIMD128) */
    this.build = impl.build;
  }

  /** @type {Catalog} item ids, titles, categories, prices: made on first read (about
   *  0.25 s at 1,000,000 items) from the typed arrays the load kept (worker mode) or
   *  takes then from the model (main-thread mode: read it before `dispose()`), then the
   *  same object */
  get catalog() {
    return this._impl.catalog;
  }

  /** Runs API method `name` (an api.js entry) after the calls before it. */
  _call(name, arg) {
    const m = method(name, 'vitrine');
    const p = new Promise((resolve, reject) => this._pending.push({ m, arg, resolve, reject }));
    if (!this._pumping) this._pump();
    return p.then((r) => {
      this.backend = this._impl.backend;
      return r;
    });
  }

  /**
   * Runs the queued calls one after the other, in call order, each settling on its own.
   * Consecutive history writes run under one hold of the storage key's Web Lock (the
   * impl's `runWrites`, which takes them off the queue one at a time, those queued
   * meanwhile too): a page recording a burst of events asks for the lock once, not once
   * per event (each grant is a round trip through the browser). Every write is still its
   * own read-modify-write.
   */
  async _pump() {
    this._pumping = true;
    try {
      while (this._pending.length) {
        const head = this._pending[0];
        if (!head.m.write) {
          this._pending.shift();
          try {
            head.resolve(await this._impl.call(head.m, head.arg));
          } catch (e) {
            head.reject(e);
          }
          continue;
        }
        const next = () => (this._pending.length && this._pending[0].m.write ? this._pending.shift() : null);
        try {
          await this._impl.runWrites(next);
        } catch (e) {
          // The lock itself failed before the write at the head ran.
          if (this._pending[0] === head) {
            this._pending.shift();
            head.reject(e);
          }
        }
      }
    } finally {
      this._pumping = false;
    }
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
   * Fills several shelves of one page in one call. With `dedup` (the default) no item
   * appears on two shelves: each shelf leaves out what the shelves before it placed, so
   * list them in priority order. Rejects before scoring any shelf when one is invalid,
   * naming it (`shelves[1].context: unknown item id …`).
   * @param {PageRequest} request
   * @returns {Promise<Recommendation[][]>} one list per shelf, in request order
   */
  page(request) {
    return this._call('page', request);
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

  /**
   * Decodes the search index now. `load()` leaves it for the first `search()` (at
   * 1,000,000 items it takes about 0.25 s and a 26 MiB index in wasm memory), so
   * recommendations come first; a page calls this when it is idle, after its first
   * shelves, so that the shopper's first search answers at once. Does nothing once
   * decoded or without an index. Rejects with an Error naming search when the index is corrupt (as `search()`
   * then does; recommendations keep working).
   * @returns {Promise<void>}
   */
  prepareSearch() {
    return this._call('prepareSearch');
  }

  /** @returns {Promise<HistoryRow[]>} the local history, oldest first */
  history() {
    return this._call('history');
  }

  /** Deletes the local history: every `vitrine:` key of this origin's localStorage (all
   * namespaces and old per-model keys). @returns {Promise<void>} */
  clearHistory() {
    return this._call('clearHistory');
  }

  /**
   * What the history store did: old keys merged in and events of items this model does
   * not know dropped at load, stored values discarded as unreadable since.
   * @returns {Promise<HistoryInfo>}
   */
  historyInfo() {
    return this._call('historyInfo');
  }

  /** @returns {Promise<string>} the history as JSON (`{"schema":1,"namespace":…,"events":[{item,kind,at}]}`) */
  exportHistory() {
    return this._call('exportHistory');
  }

  /**
   * Replaces the history with an exported one (`exportHistory()` of any model or
   * namespace). Rejects a non-string or one over MAX_IMPORT_CHARS (1,048,576 characters)
   * before parsing it, and an invalid export (format, version, times); reads at most the
   * newest 5,000 events; skips events of items this model does not know and reports them.
   * @param {string} json
   * @returns {Promise<ImportReport>} events kept, read, skipped as unknown (count and the
   *   first 5 ids) and dropped by the history limits
   */
  importHistory(json) {
    if (typeof json !== 'string') {
      return Promise.reject(new Error('importHistory: expected a JSON string'));
    }
    if (json.length > MAX_IMPORT_CHARS) {
      return Promise.reject(
        new Error(
          `importHistory: the export is ${json.length} characters, the limit is ${MAX_IMPORT_CHARS} (checked before parsing)`,
        ),
      );
    }
    return this._call('importHistory', json);
  }

  /** @returns {Promise<Stats>} timings of the last recommend() or page() (a page: summed over its shelves) */
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

/** Main-thread mode, started before the download: the package imported and its wasm
 * compiled while the weights arrive. */
function startMainThread(pkgUrls) {
  const mod = importPackage(pkgUrls);
  mod.catch(() => {}); // reported by mainThreadImpl, or moot if the download fails
  return { mod, cancel() {} };
}

/** Main-thread mode: the wasm object itself, using localStorage directly. */
async function mainThreadImpl(started, stream, options) {
  const mod = await started.mod;
  const rec = await loadStream(mod, stream, options);
  const storage = pageStorage();
  const key = rec.storageKey;
  const repair = crossTabRepair(storage, key, async (b, m, t) => rec.mergeStoredHistory(b, m, t) ?? null);
  // A write method: read-modify-write in one synchronous wasm call, under the lock; the
  // value before and after are remembered for the repair.
  async function write(m, arg) {
    const base = storage.getItem(key);
    const result = await invoke(rec, m, arg);
    if (m.clears) repair.cleared(base);
    else repair.note(base, storage.getItem(key));
    return result;
  }
  // Packed on first read too: a page that never reads it never pays (0.1 s at 1,000,000
  // items, before the first recommendation).
  const catalog = lazyCatalog(() => rec.catalogPacked());
  const impl = {
    mode: 'main',
    get backend() {
      return rec.backend;
    },
    nItems: rec.nItems,
    storageKey: rec.storageKey,
    modelInfo: rec.modelInfo(),
    // Typed arrays made into strings on first read: 2–3× faster than catalog()'s
    // JavaScript values made by the wasm (bench/engines/catalog-ab.mjs), the same object.
    get catalog() {
      return catalog.get();
    },
    adapterInfo: rec.adapterInfo,
    build: mod.buildInfo(),
    // Reads; the writes go through runWrites.
    async call(m, arg) {
      return invoke(rec, m, arg);
    },
    // The wasm reads and writes localStorage in one synchronous step; the lock keeps
    // other tabs' writes out of it.
    runWrites: (next) => writeQueued(key, next, write),
    dispose() {
      repair.dispose();
      rec.free();
    },
  };
  return impl;
}

/**
 * The worker mode's history path (the worker cannot see localStorage): hands the stored
 * string over per call and writes back the result under the lock, merging with another
 * tab's write; migrates at load; repairs overwritten writes (crossTabRepair).
 * @param {Storage} storage
 * @param {string} key
 * @param {(op: string, payload: object) => Promise<any>} call the worker RPC
 * @param {(backend: string) => void} setBackend
 */
function workerHistory(storage, key, call, setBackend) {
  const put = (value) => (value == null ? storage.removeItem(key) : storage.setItem(key, value));
  const repair = crossTabRepair(storage, key, async (base, mine, theirs) => (await call('merge', { base, mine, theirs })).stored);

  // Stores `mine`, computed by the worker from `base`. If another tab changed the value
  // meanwhile, merges (three-way, in Rust) with what it stored and checks again; the
  // final check and write run in one synchronous step.
  async function commit(base, mine) {
    for (;;) {
      const theirs = storage.getItem(key);
      if (theirs === base) {
        if (mine !== base) put(mine);
        return;
      }
      const r = await call('merge', { base, mine, theirs });
      mine = r.stored;
      base = theirs;
    }
  }

  // A read hands the stored value over and writes back what the worker pruned or
  // reset, unless another tab wrote meanwhile.
  async function read(m, arg) {
    const sent = storage.getItem(key);
    const r = await call('call', { method: m.name, arg, stored: sent });
    setBackend(r.backend);
    if (r.stored !== sent && storage.getItem(key) === sent) put(r.stored);
    return r.result;
  }

  // One write, read-merge-write, the lock held by the caller (runWrites).
  async function write(m, arg) {
    const sent = storage.getItem(key);
    const r = await call('call', { method: m.name, arg, stored: sent });
    setBackend(r.backend);
    if (m.clears) {
      for (const k of storageKeys(storage)) if (k.startsWith('vitrine:')) storage.removeItem(k);
      repair.cleared(sent);
    } else {
      await commit(sent, r.stored);
      repair.note(sent, r.stored);
    }
    return r.result;
  }

  // Load-time migration (the worker cannot see localStorage): hand over this store's
  // value and the old per-model keys, store the result, remove the keys consumed.
  const migrate = () =>
    withLock(key, async () => {
      const sent = storage.getItem(key);
      const legacy = storageKeys(storage)
        .filter((k) => LEGACY_KEY.test(k))
        .slice(0, MAX_LEGACY_KEYS)
        .map((k) => {
          const v = storage.getItem(k);
          return [k, v !== null && v.length <= MAX_IMPORT_CHARS ? v : null];
        });
      const r = await call('migrate', { stored: sent, legacy });
      await commit(sent, r.stored);
      repair.note(sent, r.stored);
      for (const k of r.removed) storage.removeItem(k);
    });

  const runWrites = (next) => writeQueued(key, next, write);
  return { read, runWrites, migrate, dispose: () => repair.dispose() };
}

/** The catalogue from `catalogPacked()`'s typed arrays (or a function returning them,
 * called then), made on the first `get()` (a page that never reads it never pays for a
 * million strings), then kept; the typed arrays are let go once made. */
function lazyCatalog(packed) {
  let made = null;
  return {
    get() {
      if (made === null) {
        made = unpackCatalog(typeof packed === 'function' ? packed() : packed);
        packed = null;
      }
      return made;
    },
  };
}

/** Worker mode, started before the download: the worker imports the package and
 * compiles its wasm ('init') while the weights arrive. */
function startWorker(pkgUrls, workerUrl) {
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
  // Its failure is the load's (the 'load' op awaits the same import).
  call('init', { pkgUrls }).catch(() => {});
  return { worker, call, pkgUrls, cancel: () => worker.terminate() };
}

/**
 * The worker's 'load': this page downloads the file and posts each chunk to the worker
 * as it arrives ('bytes', transferred), where `loadStream` loads it as it arrives. The
 * page's thread only moves bytes, so the download never waits for the worker's decoding;
 * a body without a streaming reader goes over whole.
 */
async function loadInWorker(started, url, onProgress, options) {
  const { worker, call, pkgUrls } = started;
  const { res, total } = await startDownload(url);
  if (!res.body || !res.body.getReader) {
    const bytes = new Uint8Array(await res.arrayBuffer());
    onProgress?.(bytes.length, total ?? bytes.length);
    return call('load', { bytes: bytes.buffer, options, pkgUrls }, [bytes.buffer]);
  }
  const loading = call('load', { url, total, options, pkgUrls });
  loading.catch(() => {}); // awaited below, unless the download fails first
  await pump(res, total, onProgress, {
    push(value) {
      // Its own buffer, transferred; a view into a larger one is copied first.
      const chunk = value.byteOffset === 0 && value.byteLength === value.buffer.byteLength ? value : value.slice();
      worker.postMessage({ op: 'bytes', chunk }, [chunk.buffer]);
    },
    end: () => worker.postMessage({ op: 'bytes-end' }),
    fail: (e) => worker.postMessage({ op: 'bytes-failed', message: e?.message ?? String(e), name: e?.name }),
  });
  return loading;
}

/** Worker mode: postMessage RPC; history mirrored from this page's localStorage. */
async function workerImpl(started, url, onProgress, options) {
  const { worker, call, pkgUrls } = started;
  let info;
  try {
    info = await loadInWorker(started, url, onProgress, { ...options, storage: 'memory' });
  } catch (e) {
    worker.terminate();
    throw e;
  }
  const catalog = lazyCatalog(info.catalog);
  const storage = pageStorage();
  const key = info.storageKey;
  let backend = info.backend;
  const history = workerHistory(storage, key, call, (b) => {
    backend = b;
  });
  try {
    await history.migrate();
  } catch (e) {
    worker.terminate();
    throw e;
  }

  return {
    mode: 'worker',
    get backend() {
      return backend;
    },
    nItems: info.nItems,
    storageKey: key,
    modelInfo: info.modelInfo,
    get catalog() {
      return catalog.get();
    },
    adapterInfo: info.adapterInfo,
    build: info.build,
    // Reads; the writes go through runWrites.
    async call(m, arg) {
      return history.read(m, arg);
    },
    runWrites: (next) => history.runWrites(next),
    dispose() {
      history.dispose();
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
 * @param {string} [opts.namespace] the store's history namespace, 1 to 256 characters
 *   without control characters (default: the page's origin); the history is kept per
 *   namespace, not per model, so it survives model updates
 * @param {HistoryLimits} [opts.historyLimits] cap, size, age and dedup rules of the history:
 *   maxEvents 1–5,000 (default 200), maxBytes 256–1,048,576 (default 65,536), maxAgeDays
 *   up to 3,650 (default 180), dedupWindowSecs 0–604,800 (default 1,800); outside → Error
 * @param {(loaded: number, total: number|null) => void} [opts.onProgress] download progress
 * @param {boolean} [opts.worker=true] run the model in a Web Worker
 * @param {'auto'|'relaxed'|'plain'} [opts.simd='auto'] which wasm build: relaxed SIMD where supported, else plain SIMD128
 *   (without the GPU path, about 50 KB gzip less, where the page has no `navigator.gpu`
 *   or `backend` is 'simd' or 'scalar': {@link mayUseWebGpu})
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
  const pkgUrls = packageUrls(simd, pkgUrl, mayUseWebGpu(backend));
  const options = {};
  if (integrity !== undefined) options.integrity = integrity;
  if (backend !== undefined) options.backend = backend;
  if (namespace !== undefined) options.namespace = namespace;
  if (historyLimits !== undefined) options.historyLimits = historyLimits;
  const useWorker = worker && typeof Worker !== 'undefined';
  // The package (and the worker) start now, so its wasm compiles during the download.
  const started = useWorker
    ? startWorker(pkgUrls, new URL('./worker.js', import.meta.url))
    : startMainThread(pkgUrls);
  if (useWorker) return new Vitrine(await workerImpl(started, url, onProgress, options));
  let stream;
  try {
    stream = await streamBytes(url, onProgress);
  } catch (e) {
    started.cancel();
    throw e;
  }
  const impl = await mainThreadImpl(started, stream, options);
  return new Vitrine(impl);
}
