#!/usr/bin/env node
// JS stand-in for `vitrine search-eval --write-queries DIR`: writes the harness inputs
// (catalog.json, queries.jsonl; format in README.md) from UCI Online Retail. Kept so the
// harness can run before the Rust side exists; run.mjs never depends on how the inputs
// were made.
//
// Usage: node bench/search/make-queries.mjs [--data data/online-retail/online_retail.csv.gz]
//          [--out artifacts/search] [--seed 42] [--min-matches 20]
//
// Rules (mimicking the Rust proxy):
// - Cleaning as src/data.rs: drop cancellations (InvoiceNo starting with C), Quantity <= 0,
//   missing CustomerID, non-product StockCodes (not /^\d{5}[A-Z]*$/ after upper-casing),
//   UnitPrice <= 0, and a code repeated inside one invoice.
// - Catalogue: one item per StockCode in order of first kept sale; title = most frequent
//   description (ties: first seen), price = median unit price, category = the title's head
//   noun (a port of features::derive_category).
// - Target: each customer's last purchase (latest InvoiceDate, file order on ties),
//   customers with at least 3 kept events (train, validation, test).
// - Clean query: one or two words of the target's title (lower case, title order) such
//   that at least --min-matches catalogue items match it: every word but the last equals a
//   title word, the last is a prefix of a title word. One or two words is drawn first; if
//   none of that length qualifies the other length is tried; else the customer is skipped.
// - Typo query: the clean query with one random edit (substitution, deletion, insertion or
//   adjacent transposition) in one of its words of >= 4 letters; none when it has none.
// - Split: valid or test, drawn per customer (both variants share it).
// Randomness: SplitMix64 (as crate::rng), modulo reduction, one stream from --seed.
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';

const MAX_INPUT_BYTES = 1 << 30; // refuse to inflate beyond 1 GiB

/** SplitMix64, as src/rng.rs (BigInt arithmetic, 64-bit wrap). */
export class SplitMix64 {
  constructor(seed) {
    this.state = BigInt.asUintN(64, BigInt(seed));
  }
  nextU64() {
    this.state = BigInt.asUintN(64, this.state + 0x9e3779b97f4a7c15n);
    let z = this.state;
    z = BigInt.asUintN(64, (z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n);
    z = BigInt.asUintN(64, (z ^ (z >> 27n)) * 0x94d049bb133111ebn);
    return z ^ (z >> 31n);
  }
  /** Integer in 0..n by modulo reduction (SplitMix64::below_mod); 0 when n == 0. */
  belowMod(n) {
    return n > 0 ? Number(this.nextU64() % BigInt(n)) : 0;
  }
}

/** Splits RFC 4180 CSV text into records (arrays of fields). */
export function parseCsv(text) {
  const rows = [];
  let row = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"') {
        if (text[i + 1] === '"') (field += '"'), i++;
        else quoted = false;
      } else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') row.push(field), (field = '');
    else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++;
      row.push(field), (field = '');
      if (row.length > 1 || row[0] !== '') rows.push(row);
      row = [];
    } else field += c;
  }
  if (field !== '' || row.length) row.push(field), rows.push(row);
  return rows;
}

const PACK_WORDS = ['SET', 'PACK', 'BOX', 'BAG', 'TUBE', 'JAR', 'TIN', 'PAIR', 'STRING', 'ROLL', 'BUNDLE'];
// prettier-ignore
const PRODUCT_NOUNS = new Set(('APRON BADGE BAG BALL BALLOON BANGLE BASKET BEAD BEAKER BELL BIN BLANKET BLOCK ' +
  'BOARD BOOK BOOKMARK BOTTLE BOWL BOX BRACELET BROOCH BUCKET BUNTING BUTTON CABINET CAKESTAND CALENDAR CAN ' +
  'CANDLE CANDLEHOLDER CANDLESTICK CARD CASE CHAIR CHALKBOARD CHARM CHEST CLIP CLOCK COASTER COMB CONTAINER ' +
  'COSY COVER CRAYON CUSHION CUP CURTAIN CUTLERY DECORATION DISH DISPENSER DOILY DOLL DOORMAT DOORSTOP DRAWER ' +
  'EARRING ENVELOPE ERASER FAN FLAG FLANNEL FRAME GAME GARLAND GLOVE HAIRCLIP HAMMOCK HANDBAG HANGER HOLDER ' +
  'HOOK HOTTIE INCENSE JAR JIGSAW JOURNAL JUG KEYRING KIT KNOB LAMP LAMPSHADE LANTERN LID LIGHT MAGNET MARKER ' +
  'MAT MATCH MIRROR MOBILE MUG NAPKIN NECKLACE NOTEBOOK ORGANISER ORNAMENT PAD PAN PAPER PARASOL PATCH PEG PEN ' +
  'PENCIL PENDANT PICTURE PIN PLACEMAT PLANTER PLAQUE PLATE POT POUFFE PURSE PUZZLE RACK RIBBON RING RULER ' +
  'SAUCER SCARF SHEET SHELF SIGN SKETCHBOOK SLATE SOAP SPOON STAMP STAND STICKER STOOL STRAW TABLECLOTH TAG ' +
  'TAPE TEAPOT TEASPOON THERMOMETER TIDY TIN TISSUE T-LIGHT TOWEL TOY TRAY TUMBLER UMBRELLA VASE WALLET ' +
  'WARMER WASHBAG WINDMILL WRAP WREATH').split(' '));
// prettier-ignore
const MODIFIERS = new Set(('RED WHITE PINK BLUE GREEN BLACK CREAM IVORY GOLD SILVER PURPLE BROWN YELLOW ORANGE ' +
  'GREY GRAY LILAC TURQUOISE AQUA PASTEL COLOUR COLOURED MULTICOLOUR ASSORTED ASSTD CLEAR NATURAL AMBER COPPER ' +
  'ANTIQUE GLITTER FROSTED PAINTED WICKER GLASS METAL WOODEN WOOD CERAMIC ENAMEL FELT ZINC CRYSTAL ACRYLIC WIRE ' +
  'COTTON LACE PORCELAIN TIN PAPER SMALL LARGE MEDIUM MINI JUMBO BIG GIANT TINY TALL ROUND SQUARE OVAL SIZE TIER ' +
  'TRIPLE SINGLE DOUBLE DESIGN RETROSPOT POLKADOT SPOTTY SPOT PAISLEY FLORAL VINTAGE RETRO STRIPE GINGHAM STYLE ' +
  'PRINT FINISH CHRISTMAS XMAS EASTER LONDON PANTRY SPACEBOY WOODLAND DOLLY GIRL REGENCY BAROQUE EDWARDIAN ' +
  'VICTORIAN FRENCH ENGLISH SCANDINAVIAN NEW CLASSIC TRADITIONAL DECORATIVE HANGING BAKELIKE AND OF THE A AN IN ' +
  'ON FOR TO W S I YOUR OWN').split(' '));

function singular(w) {
  const n = w.length;
  if (n > 4 && w.endsWith('IES')) return w.slice(0, n - 3) + 'Y';
  for (const suf of ['SSES', 'XES', 'CHES', 'SHES']) if (n > suf.length + 1 && w.endsWith(suf)) return w.slice(0, n - 2);
  if (n > 3 && w.endsWith('S') && !w.endsWith('SS') && !w.endsWith('US') && !w.endsWith('IS')) return w.slice(0, n - 1);
  return w;
}

const hasLetter = (w) => /\p{L}/u.test(w);

/** Port of features::derive_category: the title's head noun, upper case and singular. */
export function deriveCategory(title) {
  let words = title
    .toUpperCase()
    .split(/[^\p{L}\p{N}'-]+/u)
    .map((w) => w.replace(/^['-]+|['-]+$/g, ''))
    .filter((w) => w !== '');
  if (!words.some(hasLetter)) return 'unknown';
  const p = words.indexOf('WITH');
  if (p > 0) words = words.slice(0, p);
  let pack = null;
  if (words.length > 1 && PACK_WORDS.includes(words[0])) {
    let k = 1;
    if (words[k] === 'OF') k++;
    while (k < words.length && /^[0-9]+$/.test(words[k])) k++;
    if (k > 1 && k < words.length) (pack = words[0]), (words = words.slice(k));
  }
  const sing = words.map(singular);
  const noun = [...sing].reverse().find((w) => PRODUCT_NOUNS.has(w));
  if (noun) return noun;
  const content = (w) => (w.match(/\p{L}/gu) || []).length > 1 && !/[0-9]/.test(w) && !MODIFIERS.has(w);
  const head = [...sing].reverse().find(content);
  if (head) return head;
  if (pack) return singular(pack);
  return sing.find(hasLetter) ?? 'unknown';
}

/** Cleans the Online Retail rows; returns { items, lastByCustomer, eventsByCustomer }. */
export function loadRetail(rows) {
  const h = rows[0].map((s) => s.trim().toLowerCase());
  const col = (name) => {
    const i = h.indexOf(name);
    if (i < 0) throw new Error(`make-queries: column ${name} missing`);
    return i;
  };
  const [cInv, cCode, cDesc, cQty, cDate, cPrice, cCust] = ['invoiceno', 'stockcode', 'description', 'quantity', 'invoicedate', 'unitprice', 'customerid'].map(col);
  const items = new Map(); // code -> { id, descs: Map(desc -> count), prices: [] }
  const seenInInvoice = new Set();
  const last = new Map(); // customer -> { time, code }
  const count = new Map();
  for (let r = 1; r < rows.length; r++) {
    const row = rows[r];
    if (row.length < h.length) continue;
    const inv = row[cInv].trim();
    const qty = Number(row[cQty]);
    const cust = row[cCust].trim();
    const code = row[cCode].trim().toUpperCase();
    const price = Number(row[cPrice]);
    const time = Date.parse(row[cDate].trim() + 'Z');
    if (inv.startsWith('C') || !(qty > 0) || cust === '' || !/^[0-9]{5}[A-Z]*$/.test(code) || !(price > 0) || Number.isNaN(time)) continue;
    const key = inv + '\u0000' + code;
    if (seenInInvoice.has(key)) continue;
    seenInInvoice.add(key);
    let it = items.get(code);
    if (!it) items.set(code, (it = { id: code, descs: new Map(), prices: [] }));
    const desc = row[cDesc].trim();
    if (desc) it.descs.set(desc, (it.descs.get(desc) || 0) + 1);
    it.prices.push(price);
    const prev = last.get(cust);
    if (!prev || time >= prev.time) last.set(cust, { time, code });
    count.set(cust, (count.get(cust) || 0) + 1);
  }
  const catalog = [...items.values()].map((it) => {
    let title = it.id;
    let best = 0;
    for (const [d, n] of it.descs) if (n > best) (best = n), (title = d);
    const ps = it.prices.sort((a, b) => a - b);
    const m = ps.length >> 1;
    const price = ps.length % 2 ? ps[m] : (ps[m - 1] + ps[m]) / 2;
    return { id: it.id, title, category: deriveCategory(title), price: Math.round(price * 1e4) / 1e4 };
  });
  const targets = [...last].filter(([c]) => count.get(c) >= 3).map(([customer, v]) => ({ customer, code: v.code }));
  return { catalog, targets };
}

const words = (title) => title.toLowerCase().split(/[^\p{L}\p{N}]+/u).filter((w) => w !== '');

/** Match counting: every query word but the last equals a title word, the last prefixes one. */
class Matcher {
  constructor(catalog) {
    this.postings = new Map(); // word -> Set(item index)
    catalog.forEach((it, i) => {
      for (const w of words(it.title)) {
        if (!this.postings.has(w)) this.postings.set(w, new Set());
        this.postings.get(w).add(i);
      }
    });
    this.vocab = [...this.postings.keys()];
    this.prefixMemo = new Map();
  }
  prefix(w) {
    let s = this.prefixMemo.get(w);
    if (!s) {
      s = new Set();
      for (const v of this.vocab) if (v.startsWith(w)) for (const i of this.postings.get(v)) s.add(i);
      this.prefixMemo.set(w, s);
    }
    return s;
  }
  count(qwords) {
    const last = this.prefix(qwords[qwords.length - 1]);
    if (qwords.length === 1) return last.size;
    const first = this.postings.get(qwords[0]) || new Set();
    let n = 0;
    for (const i of first) if (last.has(i)) n++;
    return n;
  }
}

const STOP = new Set(['of', 'and', 'the', 'with', 'for', 'in', 'on', 'to', 'a', 'an']);

/** The clean query for one target title, or null when no 1- or 2-word query qualifies. */
function pickQuery(title, matcher, rng, minMatches) {
  const ws = [...new Set(words(title))].filter((w) => /^\p{L}+$/u.test(w) && w.length >= 3 && !STOP.has(w));
  const singles = ws.map((w) => [w]);
  const pairs = [];
  for (let i = 0; i < ws.length; i++) for (let j = i + 1; j < ws.length; j++) pairs.push([ws[i], ws[j]]);
  const order = rng.belowMod(2) === 0 ? [singles, pairs] : [pairs, singles];
  for (const cands of order) {
    for (let i = cands.length - 1; i > 0; i--) {
      const j = rng.belowMod(i + 1);
      [cands[i], cands[j]] = [cands[j], cands[i]];
    }
    const hit = cands.find((q) => matcher.count(q) >= minMatches);
    if (hit) return hit;
  }
  return null;
}

const LETTERS = 'abcdefghijklmnopqrstuvwxyz';

/** One random edit in one word of >= 4 letters; null when the query has none. */
export function typo(qwords, rng) {
  const eligible = qwords.map((w, i) => i).filter((i) => qwords[i].length >= 4);
  if (!eligible.length) return null;
  const wi = eligible[rng.belowMod(eligible.length)];
  const w = qwords[wi];
  let out = w;
  for (let tries = 0; out === w && tries < 16; tries++) {
    const kind = rng.belowMod(4);
    const p = rng.belowMod(w.length);
    const ch = LETTERS[rng.belowMod(26)];
    if (kind === 0) out = w.slice(0, p) + ch + w.slice(p + 1); // substitution
    else if (kind === 1) out = w.slice(0, p) + w.slice(p + 1); // deletion
    else if (kind === 2) out = w.slice(0, p) + ch + w.slice(p); // insertion
    else if (p + 1 < w.length) out = w.slice(0, p) + w[p + 1] + w[p] + w.slice(p + 2); // transposition
  }
  if (out === w) return null;
  return qwords.map((x, i) => (i === wi ? out : x));
}

function argv(name, fallback) {
  const i = process.argv.indexOf(name);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

function main() {
  const data = argv('--data', 'data/online-retail/online_retail.csv.gz');
  const out = argv('--out', 'artifacts/search');
  const seed = argv('--seed', '42');
  const minMatches = Number(argv('--min-matches', '20'));
  const raw = fs.readFileSync(data);
  const text = (raw[0] === 0x1f && raw[1] === 0x8b ? zlib.gunzipSync(raw, { maxOutputLength: MAX_INPUT_BYTES }) : raw).toString('utf8');
  const { catalog, targets } = loadRetail(parseCsv(text.replace(/^\uFEFF/, '')));
  const index = new Map(catalog.map((it, i) => [it.id, i]));
  const matcher = new Matcher(catalog);
  const rng = new SplitMix64(seed);
  const lines = [];
  let skipped = 0;
  for (const { code } of targets) {
    const split = rng.belowMod(2) === 0 ? 'valid' : 'test';
    const q = pickQuery(catalog[index.get(code)].title, matcher, rng, minMatches);
    if (!q) {
      skipped++;
      continue;
    }
    lines.push({ query: q.join(' '), target: code, variant: 'clean', split });
    const t = typo(q, rng);
    if (t) lines.push({ query: t.join(' '), target: code, variant: 'typo', split });
  }
  fs.mkdirSync(out, { recursive: true });
  fs.writeFileSync(path.join(out, 'catalog.json'), JSON.stringify(catalog) + '\n');
  fs.writeFileSync(path.join(out, 'queries.jsonl'), lines.map((l) => JSON.stringify(l)).join('\n') + '\n');
  const n = (v, s) => lines.filter((l) => l.variant === v && l.split === s).length;
  console.log(
    `make-queries: ${catalog.length} items, ${targets.length} targets, ${skipped} skipped (no query with >= ${minMatches} matches); ` +
      `clean valid/test ${n('clean', 'valid')}/${n('clean', 'test')}, typo valid/test ${n('typo', 'valid')}/${n('typo', 'test')} -> ${out}/`,
  );
}

if (import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith('make-queries.mjs')) main();
