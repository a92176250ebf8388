// worker.js — runs vitrine's wasm Recommender off the main thread (module worker).
//
// Protocol (from vitrine.js): { id, op: 'init', pkgUrls } (wasm builds to try in order;
// sent when the worker starts, so the package compiles while the weights download)
// answers {} once a build is loaded; { id, op: 'load', url, total, options, pkgUrls }
// (the page's download of `url`, announced as `total` bytes, whose chunks follow as
// { op: 'bytes', chunk: ArrayBuffer } then { op: 'bytes-end' } or { op: 'bytes-failed',
// message, name }: loaded as they arrive, while the same import runs or starts;
// `bytes: ArrayBuffer` in place of `url`: a file already downloaded) answers { backend,
// nItems, storageKey, modelInfo, catalog (packed: catalog.js), adapterInfo, build };
// { id, op: 'call', method, arg, stored } first hands over the page's stored history
// string (workers have no localStorage), runs the method, and answers
// { result, stored, backend } where `stored` is the history string after the call;
// { id, op: 'migrate', stored, legacy } (at load: this store's stored string and the page's
// old per-model keys as [[key, value|null]]) migrates them and answers { stored, removed }
// (the keys consumed, for the page to remove); { id, op: 'merge', base, mine, theirs }
// answers { stored }, the three-way merge of a write with another tab's (nothing stored).
// Errors answer { id, ok: false, error: { name, message } }. The methods a page may call
// are api.js's METHODS.

import { invoke, method } from './api.js';
import { packedBuffers } from './catalog.js';
import { arrivingBytes, importPackage, loadStream } from './vitrine.js';

let rec = null;
// The download being loaded ('load' with a url; fed by 'bytes' messages).
let feed = null;
// The package import ('init', or the first 'load' without one).
let pkg = null;

function reply(id, ok, payload) {
  if (ok) self.postMessage({ id, ok: true, result: payload });
  else {
    const e = payload;
    self.postMessage({
      id,
      ok: false,
      error: { name: e?.name ?? 'Error', message: e?.message ?? String(e) },
    });
  }
}

self.onmessage = async (ev) => {
  const { id, op } = ev.data;
  try {
    if (op === 'init') {
      pkg ??= importPackage(ev.data.pkgUrls);
      await pkg;
      reply(id, true, {});
    } else if (op === 'bytes') {
      // A chunk of the download (before any await: in order, into the load's array).
      feed?.push(ev.data.chunk);
    } else if (op === 'bytes-end') {
      feed?.end();
    } else if (op === 'bytes-failed') {
      const e = new Error(ev.data.message);
      if (ev.data.name) e.name = ev.data.name;
      feed?.fail(e);
    } else if (op === 'load') {
      pkg ??= importPackage(ev.data.pkgUrls);
      const { url, total, options } = ev.data;
      // The page posts the download's chunks ('bytes') as they arrive: the file is
      // loaded as they do.
      const stream = url !== undefined ? (feed = arrivingBytes(url, total)) : null;
      const mod = await pkg;
      rec = stream
        ? await loadStream(mod, stream, options)
        : await mod.Recommender.fromBytes(new Uint8Array(ev.data.bytes), options);
      // The catalogue as typed arrays, transferred (catalog.js): no clone of its strings.
      const catalog = rec.catalogPacked();
      const result = {
        backend: rec.backend,
        nItems: rec.nItems,
        storageKey: rec.storageKey,
        modelInfo: rec.modelInfo(),
        catalog,
        adapterInfo: rec.adapterInfo ?? null,
        build: mod.buildInfo(),
      };
      self.postMessage({ id, ok: true, result }, packedBuffers(catalog));
    } else if (op === 'call') {
      if (!rec) throw new Error('vitrine worker: no model loaded');
      const { arg, stored } = ev.data;
      const m = method(ev.data.method, 'vitrine worker');
      rec.setStoredHistory(stored ?? undefined);
      const result = await invoke(rec, m, arg);
      reply(id, true, { result, stored: rec.storedHistory() ?? null, backend: rec.backend });
    } else if (op === 'migrate') {
      if (!rec) throw new Error('vitrine worker: no model loaded');
      rec.setStoredHistory(ev.data.stored ?? undefined);
      const removed = rec.migrateStoredHistory(ev.data.legacy ?? []);
      reply(id, true, { stored: rec.storedHistory() ?? null, removed });
    } else if (op === 'merge') {
      if (!rec) throw new Error('vitrine worker: no model loaded');
      const { base, mine, theirs } = ev.data;
      reply(id, true, { stored: rec.mergeStoredHistory(base, mine, theirs) ?? null });
    } else {
      throw new Error(`vitrine worker: unknown op ${op}`);
    }
  } catch (e) {
    reply(id, false, e);
  }
};
