// catalog.js — the catalogue from its packed form (`Recommender.catalogPacked()`, see
// src/wasm/columns.rs): typed arrays a Worker transfers to the page in one move instead
// of a structured clone of every id and title. `unpackCatalog` makes `catalog()`'s object
// `{ ids, titles, categories, prices, categoryNames }` from it: one UTF-8 decode per
// segment of a string column, then one slice per string (`lens` are UTF-16 lengths, so
// the slices fall on the strings' boundaries); the category name per item by index
// ("unknown" past the names, as `catalog()`); a NaN price is `null`. No imports: the
// browser tests load this file on its own.

/** The buffers of a packed catalogue, for `postMessage`'s transfer list. */
export function packedBuffers(p) {
  return [p.ids.text, p.ids.lens, p.ids.segments, p.titles.text, p.titles.lens, p.titles.segments, p.categoryIndex, p.prices]
    .map((a) => a.buffer);
}

/** `catalog()`'s object from `catalogPacked()`'s (see the file's header). */
export function unpackCatalog(p) {
  const names = p.categoryNames;
  const index = p.categoryIndex;
  const categories = new Array(index.length);
  for (let i = 0; i < index.length; i++) categories[i] = names[index[i]] ?? 'unknown';
  const prices = new Array(p.prices.length);
  for (let i = 0; i < prices.length; i++) {
    const v = p.prices[i];
    prices[i] = Number.isNaN(v) ? null : v;
  }
  return {
    ids: unpackStrings(p.ids, 'ids'),
    titles: unpackStrings(p.titles, 'titles'),
    categories,
    prices,
    categoryNames: names.slice(),
  };
}

/** One string column `{ text, lens, segments }` as an array of strings. */
function unpackStrings({ text, lens, segments }, what) {
  // ignoreBOM: a leading U+FEFF is a character of the first string, not a byte order mark.
  const decoder = new TextDecoder('utf-8', { ignoreBOM: true });
  const out = new Array(lens.length);
  let byte = 0;
  let i = 0;
  for (let s = 0; s + 1 < segments.length; s += 2) {
    const [bytes, count] = [segments[s], segments[s + 1]];
    const seg = decoder.decode(text.subarray(byte, byte + bytes));
    let at = 0;
    for (let end = i + count; i < end; i++) {
      const next = at + lens[i];
      out[i] = seg.slice(at, next);
      at = next;
    }
    if (at !== seg.length) throw new Error(`vitrine: the packed catalogue's ${what} do not add up (segment ${s / 2})`);
    byte += bytes;
  }
  if (i !== lens.length || byte !== text.length) {
    throw new Error(`vitrine: the packed catalogue's ${what} do not add up (${i} of ${lens.length} strings)`);
  }
  return out;
}
