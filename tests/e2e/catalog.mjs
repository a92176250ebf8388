// catalog.mjs — what the storefront test needs to know about the weight file it serves,
// read in Node from the file itself (docs/weight-format.md): the catalogue (to pick search
// queries at run time), and the same file without its search section (to check the
// page's message when search is unavailable).
//
// The query pickers model the engine's matching (docs/search.md, "Matching") closely
// enough to choose queries whose outcome is certain:
//   - tokens are runs of letters and digits, lower-cased and accent-folded;
//   - the last query word matches every term that has a prefix within d Damerau edits
//     (optimal string alignment: a transposition is one edit) of it, d = 0 below 4
//     letters, 1 for 4–7, 2 for 8 or more;
//   - results are ordered by words matched, then fewer edits.
// A picked query is one for which this model leaves no doubt (e.g. no other term within
// the typo budget at all), so the test does not depend on tie-breaking details.
import crypto from 'node:crypto';
import fs from 'node:fs';
import zlib from 'node:zlib';

/** Splits a safetensors file into its header object and data section. */
function split(bytes) {
  if (bytes.length < 8) throw new Error('weight file: shorter than its 8-byte header length');
  const n = Number(bytes.readBigUInt64LE(0));
  if (8 + n > bytes.length) throw new Error('weight file: header longer than the file');
  const header = JSON.parse(bytes.subarray(8, 8 + n).toString('utf8'));
  return { header, data: bytes.subarray(8 + n) };
}

/**
 * The catalogue of the weight file at `file`: items `{ id, title, category, added }` and the
 * category names (index 0, "unknown", is not indexed for search).
 */
export function readCatalog(file) {
  const { header, data } = split(fs.readFileSync(file));
  const meta = JSON.parse(header.__metadata__.vitrine);
  const { ids, titles, category, added = [] } =
    meta.format_version >= 2 ? catalogSection(header, data, meta.model.n_items) : meta.items;
  const items = ids.map((id, i) => ({
    id,
    title: titles[i],
    category: meta.categories[category[i]] ?? 'unknown',
    added: added[i] ?? null,
  }));
  return { items, categories: meta.categories, hasSearch: 'search.index' in header };
}

/**
 * A version 2 file's catalogue from its `catalog` section (docs/weight-format.md, "The
 * catalogue section"): `n` ids and `n` titles (each a LEB128 byte length and UTF-8), then
 * `n` u32 categories, `n` f32 prices and `n` f64 dates (NaN: unknown).
 */
function catalogSection(header, data, n) {
  const entry = header.catalog;
  if (!entry || entry.dtype !== 'U8') throw new Error('weight file: version 2 without its catalog section');
  const [begin, end] = entry.data_offsets;
  const bytes = data.subarray(begin, end);
  let at = 0;
  const strings = () => {
    const out = [];
    for (let i = 0; i < n; i++) {
      let len = 0;
      for (let shift = 0; ; shift += 7) {
        if (at >= bytes.length || shift > 28) throw new Error(`catalog section: item ${i}'s length is cut short`);
        const b = bytes[at++];
        len += (b & 0x7f) * 2 ** shift;
        if (b < 0x80) break;
      }
      if (at + len > bytes.length) throw new Error(`catalog section: item ${i} is cut short`);
      out.push(bytes.toString('utf8', at, at + len));
      at += len;
    }
    return out;
  };
  const ids = strings();
  const titles = strings();
  if (at + 16 * n !== bytes.length) throw new Error('catalog section: its number columns do not fit');
  const category = Array.from({ length: n }, (_, i) => bytes.readUInt32LE(at + 4 * i));
  const datesAt = at + 8 * n;
  const added = Array.from({ length: n }, (_, i) => {
    const v = bytes.readDoubleLE(datesAt + 8 * i);
    return Number.isNaN(v) ? null : v;
  });
  return { ids, titles, category, added };
}

/**
 * The same weight file without its `search.index` tensor: later tensors move down, the
 * content hash (SHA-256 of the data section) and the checksum (`data_crc32`, where the
 * file has one) are recomputed, the header re-padded to a
 * multiple of 8 bytes. Such a file loads; its search() throws "search is unavailable".
 */
export function withoutSearchSection(bytes) {
  const { header, data } = split(bytes);
  const cut = header['search.index'];
  if (!cut) throw new Error('weight file: no search.index section to strip');
  const [b0, e0] = cut.data_offsets;
  const len = e0 - b0;
  const out = {};
  for (const [k, v] of Object.entries(header)) {
    if (k === 'search.index') continue;
    if (k === '__metadata__') {
      out[k] = v;
      continue;
    }
    const [b, e] = v.data_offsets;
    out[k] = { ...v, data_offsets: b >= e0 ? [b - len, e - len] : [b, e] };
  }
  const newData = Buffer.concat([data.subarray(0, b0), data.subarray(e0)]);
  const hash = crypto.createHash('sha256').update(newData).digest('hex');
  const meta = out.__metadata__.vitrine;
  let replaced = meta.replace(/"content_hash":"[0-9a-f]{64}"/, `"content_hash":"${hash}"`);
  if (replaced === meta) throw new Error('weight file: metadata has no content_hash to update');
  // The checksum, where the file has one: CRC-32 of the hash's digits, then the data.
  const crc = zlib.crc32(newData, zlib.crc32(hash)).toString(16).padStart(8, '0');
  replaced = replaced.replace(/"data_crc32":"[0-9a-f]{8}"/, `"data_crc32":"${crc}"`);
  out.__metadata__ = { ...out.__metadata__, vitrine: replaced };
  let json = JSON.stringify(out);
  json += ' '.repeat((8 - ((8 + Buffer.byteLength(json)) % 8)) % 8);
  const head = Buffer.alloc(8);
  head.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
  return Buffer.concat([head, Buffer.from(json, 'utf8'), newData]);
}

/** Lower-cased, accent-folded tokens of `text` (runs of letters and digits). */
export function tokens(text) {
  const folded = text.normalize('NFD').replace(/[\u0300-\u036f]/g, '').toLowerCase();
  return folded.match(/[\p{L}\p{N}]+/gu) || [];
}

/** The engine's typo budget for a query word of `n` characters. */
export function typoBudget(n) {
  if (n < 4 || n > 32) return 0;
  return n < 8 ? 1 : 2;
}

/**
 * Optimal-string-alignment distance between `q` and `t` (`prefix`: between `q` and the
 * closest prefix of `t`, as the last query word is matched).
 */
export function editDistance(q, t, prefix = false) {
  const m = q.length;
  const n = t.length;
  const d = Array.from({ length: m + 1 }, (_, i) => Array.from({ length: n + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= m; i++) {
    for (let j = 1; j <= n; j++) {
      const cost = q[i - 1] === t[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && q[i - 1] === t[j - 2] && q[i - 2] === t[j - 1]) v = Math.min(v, d[i - 2][j - 2] + 1);
      d[i][j] = v;
    }
  }
  return prefix ? Math.min(...d[m]) : d[m][n];
}

/** Every dictionary term (titles and category names but "unknown") with its title count. */
export function dictionary(catalog) {
  const titleDf = new Map();
  for (const it of catalog.items) {
    for (const t of new Set(tokens(it.title))) titleDf.set(t, (titleDf.get(t) || 0) + 1);
  }
  const terms = new Set(titleDf.keys());
  for (const c of catalog.categories.slice(1)) for (const t of tokens(c)) terms.add(t);
  return { terms: [...terms].sort(), titleDf, categoryTerms: new Set(catalog.categories.slice(1).flatMap(tokens)) };
}

/**
 * A word of ≥ 8 letters found in exactly one title (and no category name) and a typo of
 * it (two neighbouring letters swapped) that no other term comes within the typo budget
 * of, even as a prefix: typing the typo must show that one product, alone, first.
 * @returns {{ word: string, typo: string, item: {id: string, title: string, category: string} }}
 */
export function pickTypoQuery(catalog) {
  const dict = dictionary(catalog);
  const words = dict.terms.filter(
    (t) => /^[a-z]{8,14}$/.test(t) && dict.titleDf.get(t) === 1 && !dict.categoryTerms.has(t),
  );
  for (const word of words) {
    for (let i = Math.floor(word.length / 2); i < word.length - 1; i++) {
      if (word[i] === word[i + 1]) continue;
      const typo = word.slice(0, i) + word[i + 1] + word[i] + word.slice(i + 2);
      const budget = typoBudget(typo.length);
      const rivals = dict.terms.filter((t) => t !== word && editDistance(typo, t, true) <= budget);
      if (rivals.length) continue;
      const item = catalog.items.find((it) => tokens(it.title).includes(word));
      return { word, typo, item };
    }
  }
  throw new Error('no title word of 8+ letters has a typo that only it matches in this catalogue');
}

/**
 * A misspelling that matches nothing (no term has a prefix within its typo budget) but
 * is within two edits of a dictionary term: search shows "Did you mean …?".
 * @returns {{ word: string, misspelt: string }}
 */
export function pickDidYouMean(catalog) {
  const dict = dictionary(catalog);
  const words = dict.terms.filter((t) => /^[a-z]{6,7}$/.test(t) && (dict.titleDf.get(t) || 0) >= 3);
  for (const word of words) {
    // Two substitutions of inner letters by letters the word does not use.
    const spare = [...'qxzjvkwy'].filter((c) => !word.includes(c));
    if (spare.length < 2) continue;
    const misspelt = word[0] + spare[0] + word.slice(2, 4) + spare[1] + word.slice(5);
    const budget = typoBudget(misspelt.length);
    if (dict.terms.some((t) => editDistance(misspelt, t, true) <= budget)) continue;
    return { word, misspelt };
  }
  throw new Error('no 6–7 letter word has a two-edit misspelling that matches nothing in this catalogue');
}

/** A query far from every term (no prefix within four edits): nothing matches, no correction. */
export function pickNonsense(catalog) {
  const dict = dictionary(catalog);
  for (const q of ['qzxjvkqzw', 'xqzvjqkxz', 'zvqxjwzkq']) {
    if (dict.terms.every((t) => editDistance(q, t, true) > 4)) return q;
  }
  throw new Error('every nonsense probe is within four edits of a catalogue term');
}

/** The most frequent title term of 5+ letters: a broad query with many results to facet. */
export function pickBroadQuery(catalog) {
  const dict = dictionary(catalog);
  let best = null;
  for (const [t, df] of dict.titleDf) {
    if (/^[a-z]{5,}$/.test(t) && (!best || df > best.df || (df === best.df && t < best.term))) best = { term: t, df };
  }
  if (!best) throw new Error('no title term of 5+ letters in this catalogue');
  return best.term;
}

/**
 * The ids the engine counts as new (src/recommend/mod.rs, `new_items`): `added` among the
 * newest tenth of the known dates (at least one), and later than the oldest date.
 */
export function newItemIds(catalog) {
  const dates = catalog.items.map((it) => it.added).filter((a) => Number.isFinite(a)).sort((a, b) => b - a);
  if (!dates.length) return new Set();
  const count = Math.min(Math.max(Math.ceil(dates.length * 0.1), 1), dates.length);
  const threshold = dates[count - 1];
  const oldest = dates[dates.length - 1];
  return new Set(catalog.items.filter((it) => Number.isFinite(it.added) && it.added >= threshold && it.added > oldest).map((it) => it.id));
}
