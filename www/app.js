// app.js — the vitrine demo storefront: catalog, search, categories, product pages, cart,
// and three recommendation shelves, all computed in this browser by vitrine. The search
// box calls vitrine.search() as the shopper types (matched words highlighted, facets,
// personalised or text-only order, suggestions when nothing matches; see "Search" below).
//
// URL parameters (for development): ?model=<weight file URL>, ?backend=auto|webgpu|simd|
// scalar, ?simd=auto|relaxed|plain (which wasm build), ?worker=0 (run the model on the
// main thread). A ?model= URL on another origin is refused unless the page lists that
// origin in <meta name="vitrine-model-origins" content="https://cdn.example …">, and the
// page's Content-Security-Policy (connect-src) must allow it too.
import { load } from './vitrine.js';

const params = new URLSearchParams(location.search);
const MODEL_URL = params.get('model') || 'models/online-retail.vitrine';

/** The weight file's URL if the page allows its origin, else an Error saying why not. */
function checkedModelUrl(raw) {
  let url;
  try {
    url = new URL(raw, location.href);
  } catch {
    return new Error(`?model= is not a URL: ${raw}`);
  }
  const allowed = new Set([location.origin]);
  const meta = document.querySelector('meta[name="vitrine-model-origins"]');
  for (const o of (meta?.content || '').split(/\s+/).filter(Boolean)) allowed.add(o);
  if (!allowed.has(url.origin)) {
    return new Error(`the weight file's origin ${url.origin} is not one this page allows (${[...allowed].join(', ')})`);
  }
  return url.href;
}
const BACKEND = params.get('backend') || 'auto';
const USE_WORKER = params.get('worker') !== '0';
const SIMD = params.get('simd') || 'auto';
const CART_KEY = 'vitrine-demo:cart';
const GRID_LIMIT = 48;
/** Popular items shown when nothing matches. */
const SUGGESTIONS_SHOWN = 12;

const $ = (sel, root = document) => root.querySelector(sel);
const view = $('#view');
const money = new Intl.NumberFormat('en-GB', { style: 'currency', currency: 'GBP' });

/** @type {import('./vitrine.js').Vitrine} */
let vitrine;
let catalog;
let indexById = new Map();
let lowerTitles = [];
let query = '';
let renderToken = 0;

// ---------------------------------------------------------------------------------------
// Small DOM helpers.

function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v == null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'testid') el.dataset.testid = v;
    // Through the CSSOM, not a style attribute: the page's CSP (style-src 'self') blocks those.
    else if (k === 'style') el.style.cssText = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) {
    if (c == null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

function hue(text) {
  let x = 0;
  for (let i = 0; i < text.length; i++) x = (x * 31 + text.charCodeAt(i)) >>> 0;
  return x % 360;
}

function initials(title) {
  return title
    .split(/\s+/)
    .filter((w) => /[a-z]/i.test(w))
    .slice(0, 2)
    .map((w) => w[0].toUpperCase())
    .join('');
}

function thumb(title, category) {
  const c = hue(category || title);
  return h('div', {
    class: 'thumb',
    style: `--h:${c}`,
    'aria-hidden': 'true',
    text: initials(title),
  });
}

function priceText(p) {
  return p == null ? '' : money.format(p);
}

function itemOf(id) {
  const i = indexById.get(id);
  if (i === undefined) return null;
  return {
    id,
    index: i,
    title: catalog.titles[i],
    category: catalog.categories[i],
    price: catalog.prices[i],
  };
}

function productLink(id) {
  return `#/p/${encodeURIComponent(id)}`;
}

function categoryLink(name) {
  return `#/c/${encodeURIComponent(name)}`;
}

// ---------------------------------------------------------------------------------------
// Cart (page state, kept in localStorage beside vitrine's history; never sent anywhere).

function getCart() {
  try {
    const c = JSON.parse(localStorage.getItem(CART_KEY) || '[]');
    return Array.isArray(c) ? c.filter((id) => indexById.has(id)) : [];
  } catch {
    return [];
  }
}

function setCart(ids) {
  try {
    localStorage.setItem(CART_KEY, JSON.stringify(ids));
  } catch {
    /* storage full or unavailable: the cart is per page view then */
  }
  $('[data-testid="cart-count"]').textContent = String(ids.length);
}

// ---------------------------------------------------------------------------------------
// Cards and shelves.

function productCard(item) {
  return h(
    'a',
    { class: 'card', href: productLink(item.id), testid: 'product-card', 'data-item-id': item.id },
    thumb(item.title, item.category),
    h('span', { class: 'card-title', text: item.title }),
    h('span', { class: 'card-meta' }, h('span', { text: item.category }), h('b', { text: priceText(item.price) })),
  );
}

const EVENT_VERB = { view: 'viewed', cart: 'added to cart', purchase: 'bought' };

function reasonText(r) {
  switch (r.kind) {
    case 'history':
      return `because you ${EVENT_VERB[r.event] || 'viewed'} “${r.title}”`;
    case 'similar':
      return `similar to “${r.title}”`;
    case 'bought-together':
      return r.orders
        ? `bought with “${r.title}” in ${r.orders} order${r.orders === 1 ? '' : 's'}`
        : `often bought with “${r.title}”`;
    case 'popular':
      return 'popular in this store';
    case 'promoted':
      return 'promoted: deal of the day';
    case 'boosted':
      return 'featured';
    case 'new':
      return 'new arrival';
    default:
      return r.kind;
  }
}

/** Placement reasons (promoted, new) always, then the first two of the others. */
function shownReasons(reasons) {
  const placed = reasons.filter((r) => r.kind === 'promoted' || r.kind === 'new');
  return [...placed, ...reasons.filter((r) => !placed.includes(r)).slice(0, 2)];
}

/** What the model learned from, e.g. "purchases (views, carts read as purchases)". */
function kindsText(kinds) {
  const plural = { view: 'views', cart: 'carts', purchase: 'purchases' };
  if (!kinds?.trained) return 'not recorded (older model file)';
  const mapped = ['view', 'cart', 'purchase']
    .filter((k) => kinds.mapped?.[k])
    .map((k) => `${plural[k]} read as ${plural[kinds.mapped[k]] || kinds.mapped[k]}`);
  return kinds.trained.map((k) => plural[k] || k).join(', ') + (mapped.length ? ` (${mapped.join(', ')})` : '');
}

function recCard(rec) {
  return h(
    'a',
    {
      class: 'card rec',
      href: productLink(rec.item),
      testid: 'rec-card',
      'data-item-id': rec.item,
      title: `score ${rec.score.toFixed(3)}`,
    },
    thumb(rec.title, rec.category),
    h('span', { class: 'card-title', testid: 'rec-title', text: rec.title }),
    h('span', { class: 'card-meta' }, h('span', { text: rec.category }), h('b', { text: priceText(rec.price) })),
    h(
      'ul',
      { class: 'reasons', testid: 'rec-reasons' },
      shownReasons(rec.reasons).map((r) => h('li', { 'data-kind': r.kind, text: reasonText(r) })),
    ),
  );
}

/**
 * The shelves of one page, filled by one `page()` call: no item appears on two of them
 * (each leaves out what the shelves filled before it placed). They are shown in the order
 * given and filled by `fill` (lower first; default: the shelf's position), so that a
 * constrained shelf can go first: "frequently bought together" has only the few items
 * with order evidence, "similar items" many good candidates — filled the other way round,
 * the similar shelf can take every bought-together partner and leave that shelf items
 * never bought with the product.
 * Each spec: `{ testid, title, options }`; `options` may be a promise (options that need
 * the history first). Returns the shelf elements, in order.
 * @param {{ testid: string, title: string, options: object|Promise<object>, note?: string,
 *           data?: object, fill?: number }[]} specs
 * @param {number} token render token (stale renders are dropped)
 */
function shelves(specs, token) {
  const parts = specs.map(({ testid, title, note, data = {} }) => {
    const list = h('div', { class: 'shelf-items', testid: `${testid}-items` }, h('p', { class: 'muted', text: 'Scoring…' }));
    const el = h(
      'section',
      { class: 'shelf', testid, 'data-state': 'loading', ...data },
      h('h2', { text: title }),
      note ? h('p', { class: 'muted shelf-note', text: note }) : null,
      list,
    );
    return { el, list };
  });
  const rank = (j) => specs[j].fill ?? j;
  const order = specs.map((_, j) => j).sort((a, b) => rank(a) - rank(b) || a - b);
  Promise.all(order.map((j) => specs[j].options))
    .then((options) => vitrine.page({ shelves: options }))
    .then((filled) => {
      if (token !== renderToken) return;
      const lists = [];
      order.forEach((j, r) => {
        lists[j] = filled[r];
      });
      parts.forEach(({ el, list }, j) => {
        const recs = lists[j] || [];
        list.replaceChildren(
          ...(recs.length ? recs.map(recCard) : [h('p', { class: 'muted', text: 'Nothing to suggest yet.' })]),
        );
        el.dataset.state = 'ready';
      });
      updatePanel();
    })
    .catch((e) => {
      if (token !== renderToken) return;
      for (const { el, list } of parts) {
        list.replaceChildren(h('p', { class: 'error', text: `Could not score: ${e.message}` }));
        el.dataset.state = 'error';
      }
    });
  return parts.map((p) => p.el);
}

/** One shelf (a page of one). */
function shelf(testid, title, options, token) {
  return shelves([{ testid, title, options }], token)[0];
}

/**
 * The store's promotion: three "deals of the day", picked from the catalogue by the date
 * (the same all day, different tomorrow). A real store would list its own.
 * @returns {string[]}
 */
function dealsOfTheDay() {
  const n = catalog.ids.length;
  const day = Math.floor(Date.now() / 86_400_000);
  return [0, 1, 2].map((j) => catalog.ids[(day * 7919 + j * 104_729) % n]);
}

/** The categories of the shopper's history (for the "other departments" shelf). */
async function historyCategories() {
  const rows = await vitrine.history();
  const names = new Set();
  for (const r of rows) {
    const it = itemOf(r.item);
    if (it) names.add(it.category);
  }
  return [...names];
}

/**
 * The home page's shelves: for you (with the promoted deal in the first slot), new in
 * (only new items, ranked for this shopper), and other departments (categories the
 * shopper has not browsed, diversified).
 */
function homeShelves(token, k = 12) {
  const deals = dealsOfTheDay();
  const other = historyCategories().then((names) => ({
    k: 8,
    diversity: 0.8,
    filter: { excludeCategories: names },
  }));
  return shelves(
    [
      {
        testid: 'shelf-for-you',
        title: 'Recommended for you',
        options: { k, promote: { ids: deals, slots: 1 } },
        data: { 'data-promoted-ids': deals.join(' ') },
      },
      { testid: 'shelf-new', title: 'New in', note: 'Our newest products, picked for you.', options: { k: 8, filter: { newOnly: true } } },
      {
        testid: 'shelf-other-departments',
        title: 'From other departments',
        note: 'Complete the look: departments you have not browsed yet.',
        options: other,
      },
    ],
    token,
  );
}

function grid(items, testid = 'product-grid') {
  return h('div', { class: 'grid', testid }, items.map(productCard));
}

// ---------------------------------------------------------------------------------------
// Views.

/** Substring filter over titles: the fallback when the model has no search index. */
function searchMatches(q) {
  const terms = q.toLowerCase().split(/\s+/).filter(Boolean);
  const out = [];
  for (let i = 0; i < catalog.ids.length && out.length < GRID_LIMIT; i++) {
    if (terms.every((t) => lowerTitles[i].includes(t))) out.push(itemOf(catalog.ids[i]));
  }
  return out;
}

function homeView(token) {
  if (!query.trim()) {
    search.ui = null;
    const all = catalog.ids.slice(0, GRID_LIMIT).map(itemOf);
    return [
      ...homeShelves(token),
      h(
        'section',
        { class: 'products' },
        h('h2', {}, 'All products ', h('small', { testid: 'result-count', text: `${all.length} of ${catalog.ids.length} shown` })),
        grid(all),
      ),
    ];
  }
  search.ui = searchSection();
  requestSearch();
  return [search.ui.root, shelf('shelf-for-you', 'Recommended for you', { k: 12 }, token)];
}

function categoryView(name, token) {
  const items = [];
  for (let i = 0; i < catalog.ids.length && items.length < GRID_LIMIT; i++) {
    if (catalog.categories[i] === name) items.push(itemOf(catalog.ids[i]));
  }
  return [
    h('h1', { testid: 'category-title', text: name }),
    shelf('shelf-for-you', `Recommended for you in ${name}`, { k: 8, filter: { categories: [name] } }, token),
    h('section', { class: 'products' }, h('h2', { text: 'Products' }), grid(items)),
  ];
}

async function productView(id, token, recordView = true) {
  const item = itemOf(id);
  if (!item) return [h('h1', { text: 'Product not found' }), h('p', {}, h('a', { href: '#/', text: 'Back to the store' }))];
  // Viewing a product page is a history event (stored locally only).
  if (recordView) {
    try {
      await vitrine.record({ item: id, type: 'view' });
    } catch (e) {
      console.warn(e);
    }
    if (token !== renderToken) return null;
  }
  const inCart = getCart().includes(id);
  const addBtn = h('button', {
    class: 'primary',
    type: 'button',
    testid: 'add-to-cart',
    text: inCart ? 'In your cart' : 'Add to cart',
    disabled: inCart,
    onclick: async () => {
      const cart = getCart();
      if (!cart.includes(id)) setCart([...cart, id]);
      addBtn.textContent = 'In your cart';
      addBtn.disabled = true;
      try {
        await vitrine.record({ item: id, type: 'cart' });
      } catch (e) {
        console.warn(e);
      }
      updatePanel();
    },
  });
  return [
    h(
      'article',
      { class: 'product', testid: 'product-page', 'data-item-id': id },
      thumb(item.title, item.category),
      h(
        'div',
        { class: 'product-info' },
        h('h1', { testid: 'product-title', text: item.title }),
        h('p', { class: 'price', text: priceText(item.price) }),
        h('p', {}, 'Category: ', h('a', { href: categoryLink(item.category), testid: 'product-category', text: item.category })),
        h('p', { class: 'muted', text: `Item ${item.id}` }),
        addBtn,
      ),
    ),
    ...shelves(
      [
        { testid: 'shelf-similar', title: 'Similar items', options: { k: 8, context: id } },
        {
          testid: 'shelf-bought-together',
          title: 'Frequently bought together',
          options: { k: 8, basket: [id, ...getCart().filter((x) => x !== id)] },
          fill: -1,
        },
        { testid: 'shelf-for-you', title: 'Recommended for you', options: { k: 8, exclude: [id] } },
      ],
      token,
    ),
  ];
}

function cartView(token) {
  const cart = getCart();
  const rows = cart.map((id) => {
    const it = itemOf(id);
    return h(
      'li',
      { testid: 'cart-item', 'data-item-id': id },
      h('a', { href: productLink(id), text: it.title }),
      h('span', { text: priceText(it.price) }),
      h('button', {
        type: 'button',
        class: 'link',
        text: 'Remove',
        onclick: () => {
          setCart(getCart().filter((x) => x !== id));
          route();
        },
      }),
    );
  });
  const total = cart.reduce((s, id) => s + (itemOf(id).price || 0), 0);
  return [
    h('h1', { text: 'Your cart' }),
    cart.length
      ? h('ul', { class: 'cart', testid: 'cart-list' }, rows)
      : h('p', { class: 'muted', testid: 'cart-empty', text: 'Your cart is empty.' }),
    cart.length
      ? h(
          'p',
          { class: 'cart-total' },
          `Total ${money.format(total)} `,
          h('button', {
            class: 'primary',
            type: 'button',
            testid: 'checkout',
            text: 'Checkout',
            onclick: async () => {
              for (const id of getCart()) {
                try {
                  await vitrine.record({ item: id, type: 'purchase' });
                } catch (e) {
                  console.warn(e);
                }
              }
              setCart([]);
              route();
            },
          }),
        )
      : null,
    ...(cart.length
      ? shelves(
          [
            { testid: 'shelf-bought-together', title: 'Frequently bought together', options: { k: 8, basket: cart } },
            { testid: 'shelf-for-you', title: 'Recommended for you', options: { k: 8 } },
          ],
          token,
        )
      : [shelf('shelf-for-you', 'Recommended for you', { k: 8 }, token)]),
  ];
}

/** Renders the view for the current hash (`recordView: false` re-renders without a new event). */
async function route({ recordView = true } = {}) {
  const token = ++renderToken;
  const hash = location.hash.replace(/^#/, '') || '/';
  let kind;
  let arg = '';
  const m = hash.match(/^\/(p|c)\/(.+)$/);
  if (hash === '/cart') kind = 'cart';
  else if (m) {
    kind = m[1];
    try {
      arg = decodeURIComponent(m[2]);
    } catch {
      arg = m[2];
    }
  }
  let parts;
  search.ui = null; // homeView sets it when it shows search results
  if (kind === 'p') parts = await productView(arg, token, recordView);
  else if (kind === 'c') parts = categoryView(arg, token);
  else if (kind === 'cart') parts = cartView(token);
  else parts = homeView(token);
  if (token !== renderToken || parts == null) return;
  view.replaceChildren(...parts.filter(Boolean));
  view.dataset.route = kind || 'home';
  if (kind !== undefined || !query) window.scrollTo(0, 0);
  updatePanel();
}

// ---------------------------------------------------------------------------------------
// Side panel.

function formatBytes(n) {
  if (n >= 1 << 20) return `${(n / (1 << 20)).toFixed(1)} MiB`;
  if (n >= 1 << 10) return `${(n / (1 << 10)).toFixed(0)} KiB`;
  return `${n} B`;
}

async function updatePanel() {
  const [hist, stats] = await Promise.all([vitrine.history(), vitrine.stats()]);
  const gpuName = vitrine.adapterInfo?.trim() && vitrine.backend === 'webgpu' ? ` ${vitrine.adapterInfo.trim()}` : '';
  const cpuBuild = vitrine.backend === 'simd' && vitrine.build?.simd === 'relaxed-simd' ? ' (relaxed SIMD)' : '';
  $('[data-testid="panel-backend"]').textContent = vitrine.backend + gpuName + cpuBuild;
  $('[data-testid="panel-score-ms"]').textContent = stats.calls
    ? `${stats.scoreMs.toFixed(1)} ms scoring, ${stats.totalMs.toFixed(1)} ms total`
    : '–';
  const list = $('[data-testid="history-list"]');
  list.replaceChildren(
    ...hist
      .slice()
      .reverse()
      .slice(0, 30)
      .map((e) =>
        h(
          'li',
          { testid: 'history-item', 'data-item-id': e.item, 'data-type': e.type },
          h('span', { class: `tag ${e.type}`, text: e.type }),
          ' ',
          e.title ? h('a', { href: productLink(e.item), text: e.title }) : h('span', { text: e.item }),
        ),
      ),
  );
  $('[data-testid="history-empty"]').hidden = hist.length > 0;
}

function setupPanel() {
  const info = vitrine.modelInfo;
  $('[data-testid="panel-model-size"]').textContent = `${formatBytes(info.sizeBytes)}, ${info.quantization}, d=${info.dim}`;
  $('[data-testid="panel-items"]').textContent = String(info.items);
  $('[data-testid="panel-kinds"]').textContent = kindsText(info.kinds);
  $('[data-testid="clear-history"]').addEventListener('click', async () => {
    await vitrine.clearHistory();
    // The demo's own state goes too: the cart (vitrine removed its `vitrine:` keys).
    try {
      localStorage.removeItem(CART_KEY);
    } catch {
      /* storage unavailable: nothing stored */
    }
    $('[data-testid="cart-count"]').textContent = '0';
    $('[data-testid="export-box"]').hidden = true;
    await route({ recordView: false });
  });
  $('[data-testid="export-history"]').addEventListener('click', async () => {
    const json = await vitrine.exportHistory();
    const box = $('[data-testid="export-box"]');
    $('[data-testid="export-output"]').value = json;
    const a = $('[data-testid="export-download"]');
    if (a.href) URL.revokeObjectURL(a.href);
    a.href = URL.createObjectURL(new Blob([json], { type: 'application/json' }));
    box.hidden = false;
  });
}

function setupCategories() {
  const counts = new Map();
  for (const c of catalog.categories) counts.set(c, (counts.get(c) || 0) + 1);
  const names = catalog.categoryNames
    .filter((n) => counts.get(n))
    .sort((a, b) => counts.get(b) - counts.get(a) || a.localeCompare(b))
    .slice(0, 30);
  $('[data-testid="category-list"]').replaceChildren(
    ...names.map((n) =>
      h('li', {}, h('a', { href: categoryLink(n), testid: 'category-link', text: n }), h('small', { text: ` ${counts.get(n)}` })),
    ),
  );
}

// ---------------------------------------------------------------------------------------
// Search: vitrine.search() on this device, as the shopper types. Nothing is sent anywhere.
//
// One call at a time: an input event while a call is in flight marks the query dirty, and
// when the call returns its answer is dropped and only the latest query runs (intermediate
// ones are skipped, never queued). Facets filter through search()'s `filter` (a price band [min, max) becomes
// priceMin = min, priceMax = the largest float32 below max, so the filtered total equals
// the band's count); the order toggle sends personalize: 0 for "text only".

/** The search box's state; facets and the order survive keystrokes. */
const search = {
  /** Active category facet (a name), or null. */
  category: null,
  /** Active price band `{ min, max }` (either may be null: unbounded), or null. */
  band: null,
  /** The order toggle: true sends personalize: 0. */
  textOnly: false,
  /** The results section of the home view (elements), or null when not shown. */
  ui: null,
  /** A search() call is in flight. */
  running: false,
  /** The query or a filter changed since the call in flight started. */
  dirty: false,
  /** search() calls made, and the most ever in flight at once (the search box's
   * data-searches and data-max-in-flight, read by the e2e test). */
  calls: 0,
  inFlight: 0,
  maxInFlight: 0,
};

/** The largest float32 strictly below `x` (prices are float32 in the weight file). */
function f32Below(x) {
  const f = new Float32Array([x]);
  const u = new Uint32Array(f.buffer);
  if (f[0] === 0) u[0] = 0x80000001;
  else if (f[0] > 0) u[0] -= 1;
  else u[0] += 1;
  return f[0];
}

function searchOptions() {
  const filter = {};
  if (search.category != null) filter.categories = [search.category];
  if (search.band) {
    if (search.band.min != null) filter.priceMin = search.band.min;
    if (search.band.max != null) filter.priceMax = f32Below(search.band.max);
  }
  const options = { k: GRID_LIMIT, facets: true, filter };
  if (search.textOnly) options.personalize = 0;
  return options;
}

function resetSearchFilters() {
  search.category = null;
  search.band = null;
}

/** Runs the latest query now, or after the call in flight (never more than one). */
function requestSearch() {
  search.dirty = true;
  if (!search.running) runSearches();
}

async function runSearches() {
  search.running = true;
  try {
    while (search.dirty) {
      search.dirty = false;
      const ui = search.ui;
      if (!ui || !query.trim()) break;
      const q = query;
      ui.root.dataset.state = 'loading';
      ui.root.setAttribute('aria-busy', 'true');
      search.calls++;
      search.maxInFlight = Math.max(search.maxInFlight, ++search.inFlight);
      const t0 = performance.now();
      let res = null;
      let err = null;
      try {
        res = await vitrine.search(q, searchOptions());
      } catch (e) {
        err = e;
      } finally {
        search.inFlight--;
      }
      // On the search box too, so the e2e test reads them whatever the view shows.
      const input = $('[data-testid="search-input"]');
      input.dataset.searches = String(search.calls);
      input.dataset.maxInFlight = String(search.maxInFlight);
      // The page moved on, or a newer query is waiting: only the latest answer is shown.
      if (ui !== search.ui || search.dirty) continue;
      renderSearch(ui, q, res, err, performance.now() - t0);
    }
  } finally {
    search.running = false;
  }
}

/** The results section (filled by renderSearch). */
function searchSection() {
  const mode = (value, label, testid) =>
    h(
      'label',
      { class: 'seg' },
      h('input', {
        type: 'radio',
        name: 'search-order',
        value,
        testid,
        checked: search.textOnly === (value === 'text'),
        onchange: () => {
          search.textOnly = value === 'text';
          requestSearch();
        },
      }),
      h('span', { text: label }),
    );
  const ui = {
    heading: h('span', {}),
    count: h('small', { testid: 'result-count', 'aria-live': 'polite', 'aria-atomic': 'true' }),
    time: h('small', { class: 'search-time', testid: 'search-time' }),
    order: h('p', { class: 'search-order muted', testid: 'search-order' }),
    error: h('p', { class: 'error', testid: 'search-error', role: 'alert', hidden: true }),
    facets: h('div', { class: 'facets', testid: 'search-facets' }),
    suggestions: h('div', { class: 'suggestions', testid: 'search-suggestions', hidden: true }),
    grid: h('div', { class: 'grid', testid: 'product-grid' }),
  };
  const toggle = h(
    'fieldset',
    { class: 'toggle', testid: 'search-toggle' },
    h('legend', { text: 'Order' }),
    mode('personalised', 'Personalised', 'search-mode-personalised'),
    mode('text', 'Text only', 'search-mode-text'),
  );
  ui.root = h(
    'section',
    { class: 'products search-results', testid: 'search-results', 'data-state': 'loading', 'aria-label': 'Search results' },
    h('div', { class: 'search-head' }, h('h2', {}, ui.heading, ' ', ui.count, ' ', ui.time), toggle),
    ui.order,
    ui.error,
    ui.facets,
    ui.suggestions,
    ui.grid,
  );
  return ui;
}

/** Shows one search() answer (or its error) in `ui`. */
function renderSearch(ui, q, res, err, ms) {
  const root = ui.root;
  const shownQuery = q.trim().length > 80 ? `${q.trim().slice(0, 80)}…` : q.trim();
  ui.heading.textContent = `Results for “${shownQuery}”`;
  root.dataset.query = q;
  if (err) renderSearchError(ui, err);
  else {
    ui.error.hidden = true;
    root.dataset.personalized = String(res.personalized);
    root.dataset.total = String(res.total);
    const shown = res.results.length;
    ui.count.dataset.total = String(res.total);
    ui.count.dataset.shown = String(shown);
    ui.count.textContent = res.total ? `${shown} of ${res.total} match${res.total === 1 ? '' : 'es'}` : 'no matches';
    ui.time.textContent = `${ms.toFixed(1)} ms on this device`;
    ui.order.textContent = orderText(res);
    renderFacets(ui.facets, res.facets);
    renderSuggestions(ui.suggestions, res.suggestions);
    ui.grid.replaceChildren(...res.results.map((r) => searchCard(r)));
  }
  root.dataset.state = err ? 'error' : 'ready';
  root.removeAttribute('aria-busy');
}

/** No search index (or another failure): say so, and fall back to a title filter. */
function renderSearchError(ui, err) {
  const unavailable = /search/i.test(err.message);
  const matches = searchMatches(ui.root.dataset.query || query);
  ui.error.textContent = unavailable
    ? `Search is unavailable with this model (${err.message}). Showing titles that contain your words instead.`
    : `Search failed: ${err.message}`;
  ui.error.hidden = false;
  ui.count.dataset.total = String(matches.length);
  ui.count.dataset.shown = String(matches.length);
  ui.count.textContent = `${matches.length}${matches.length === GRID_LIMIT ? '+' : ''} titles contain your words`;
  ui.time.textContent = '';
  ui.order.textContent = '';
  ui.root.dataset.personalized = 'false';
  ui.facets.replaceChildren();
  ui.suggestions.hidden = true;
  ui.grid.replaceChildren(...matches.map(productCard));
  console.error(err);
}

function orderText(res) {
  if (res.personalized) return 'Personalised: text relevance blended with your browsing on this device.';
  if (search.textOnly) return 'Text only: ordered by how well the words match.';
  return 'Text order: personalisation starts once you have viewed a product.';
}

/**
 * `title` as text nodes and `<mark>`s over `spans` (UTF-16 `[start, end)` offsets, as
 * `String.prototype.slice` takes them); out-of-range or overlapping spans are clipped.
 */
function highlighted(title, spans) {
  const out = [];
  let at = 0;
  const sorted = (spans || []).filter((s) => Number.isInteger(s.start) && Number.isInteger(s.end));
  sorted.sort((a, b) => a.start - b.start);
  for (const s of sorted) {
    const start = Math.min(Math.max(s.start, at), title.length);
    const end = Math.min(s.end, title.length);
    if (end <= start) continue;
    if (start > at) out.push(document.createTextNode(title.slice(at, start)));
    out.push(h('mark', { testid: 'search-highlight', text: title.slice(start, end) }));
    at = end;
  }
  if (at < title.length) out.push(document.createTextNode(title.slice(at)));
  return out;
}

/** What a shopper reads for a search reason (null: nothing worth a line). */
function searchReasonText(r, popularCategory) {
  switch (r.kind) {
    case 'match': {
      const fixed = (r.terms || []).filter((t) => t.distance > 0);
      return fixed.length ? `matched ${fixed.map((t) => `“${t.word}” as “${t.term}”`).join(', ')}` : null;
    }
    case 'history':
      return reasonText(r);
    case 'popular':
      return popularCategory ? `popular in ${popularCategory.toLowerCase()}` : 'popular in this store';
    default:
      return r.kind;
  }
}

/** A result card: the title with its matched words marked, and the reasons. */
function searchCard(r, { testid = 'product-card', popularCategory = null } = {}) {
  const spans = r.reasons.find((x) => x.kind === 'match')?.spans;
  // The corrected words, then the strongest "because you viewed" (one is enough on a card).
  const lines = r.reasons
    .filter((x, i, all) => x.kind !== 'history' || all.findIndex((y) => y.kind === 'history') === i)
    .map((x) => [x.kind, searchReasonText(x, popularCategory)])
    .filter(([, text]) => text)
    .slice(0, 2);
  return h(
    'a',
    {
      class: 'card',
      href: productLink(r.item),
      testid,
      'data-item-id': r.item,
      'data-category': r.category,
      'data-price': r.price == null ? null : String(r.price),
      title: `score ${r.score.toFixed(3)}, text ${r.textScore.toFixed(3)}`,
    },
    thumb(r.title, r.category),
    h('span', { class: 'card-title', testid: 'search-title' }, highlighted(r.title, spans)),
    h('span', { class: 'card-meta' }, h('span', { text: r.category }), h('b', { text: priceText(r.price) })),
    h(
      'ul',
      { class: 'reasons', testid: 'search-reasons' },
      lines.map(([kind, text]) => h('li', { 'data-kind': kind, text })),
    ),
  );
}

function bandLabel(b) {
  if (b.min == null && b.max == null) return 'any price';
  if (b.min == null) return `under ${priceText(b.max)}`;
  if (b.max == null) return `${priceText(b.min)} and up`;
  return `${priceText(b.min)} – ${priceText(b.max)}`;
}

const sameBand = (a, b) => a != null && b != null && a.min === b.min && a.max === b.max;

/** A facet button: pressed when active; a click toggles it and searches again. */
function facetButton(testid, label, count, active, onclick, data) {
  return h(
    'button',
    { type: 'button', class: `facet${active ? ' active' : ''}`, testid, 'aria-pressed': String(active), onclick, ...data },
    h('span', { text: label }),
    ' ',
    h('small', { class: 'facet-count', testid: 'facet-count', text: String(count) }),
  );
}

/** Category and price-band facets; the active ones stay listed (count 0 if none match). */
function renderFacets(el, facets) {
  if (!facets) {
    el.replaceChildren();
    return;
  }
  const cats = facets.categories.slice(0, 12);
  if (search.category != null && !cats.some((c) => c.name === search.category)) {
    cats.unshift(facets.categories.find((c) => c.name === search.category) || { name: search.category, count: 0 });
  }
  const bands = facets.priceBands.slice();
  if (search.band && !bands.some((b) => sameBand(b, search.band))) bands.push({ ...search.band, count: 0 });
  const catButtons = cats.map((c) =>
    facetButton('facet-category', c.name.toLowerCase(), c.count, c.name === search.category, () => {
      search.category = c.name === search.category ? null : c.name;
      requestSearch();
    }, { 'data-name': c.name }),
  );
  const bandButtons = bands.map((b) =>
    facetButton('facet-price', bandLabel(b), b.count, sameBand(b, search.band), () => {
      search.band = sameBand(b, search.band) ? null : { min: b.min, max: b.max };
      requestSearch();
    }, { 'data-min': b.min == null ? '' : String(b.min), 'data-max': b.max == null ? '' : String(b.max) }),
  );
  el.replaceChildren(
    h('div', { class: 'facet-group', role: 'group', 'aria-label': 'Filter by category' }, h('span', { class: 'facet-name', text: 'Category' }), catButtons),
    h('div', { class: 'facet-group', role: 'group', 'aria-label': 'Filter by price' }, h('span', { class: 'facet-name', text: 'Price' }), bandButtons),
  );
}

/** Nothing matched: "Did you mean …?" (a link that searches it) and popular items. */
function renderSuggestions(el, s) {
  if (!s) {
    el.hidden = true;
    el.replaceChildren();
    return;
  }
  const parts = [];
  if (s.didYouMean) {
    parts.push(
      h(
        'p',
        { class: 'did-you-mean' },
        'Did you mean ',
        h('a', {
          href: '#/',
          testid: 'did-you-mean',
          text: s.didYouMean,
          onclick: (ev) => {
            ev.preventDefault();
            setQuery(s.didYouMean);
          },
        }),
        '?',
      ),
    );
  }
  if (s.popular.length) {
    const where = s.popularCategory ? `Popular in ${s.popularCategory.toLowerCase()}` : 'Popular in this store';
    parts.push(
      h('h3', { testid: 'suggestions-title', text: where }),
      h('div', { class: 'grid', testid: 'suggestion-grid' }, s.popular.slice(0, SUGGESTIONS_SHOWN).map((r) => searchCard(r, { testid: 'suggestion-card', popularCategory: s.popularCategory }))),
    );
  }
  el.replaceChildren(...parts);
  el.hidden = parts.length === 0;
}

/** Puts `text` in the search box and searches it (the did-you-mean link). */
function setQuery(text) {
  const input = $('[data-testid="search-input"]');
  input.value = text;
  input.focus();
  onQuery(text);
}

/** The search box changed: search in place on the home view, else go home to search. */
function onQuery(value) {
  const had = query.trim() !== '';
  query = value;
  const has = query.trim() !== '';
  if (!has) resetSearchFilters();
  if (location.hash && location.hash !== '#/') {
    if (has) location.hash = '#/'; // typing elsewhere goes to the results; clearing stays
    return;
  }
  if (had && has && search.ui) requestSearch();
  else if (had || has) route({ recordView: false });
}

function setupSearch() {
  const input = $('[data-testid="search-input"]');
  input.addEventListener('input', () => onQuery(input.value));
  input.addEventListener('keydown', (ev) => {
    if (ev.key !== 'Escape') return;
    ev.preventDefault();
    input.value = '';
    onQuery('');
  });
  // Enter submits the form: never a page load, just search now.
  $('[data-testid="search-form"]').addEventListener('submit', (ev) => {
    ev.preventDefault();
    onQuery(input.value);
  });
}

// ---------------------------------------------------------------------------------------
// Start.

async function main() {
  const status = $('[data-testid="load-status"]');
  const progress = $('[data-testid="load-progress"]');
  try {
    const modelUrl = checkedModelUrl(MODEL_URL);
    if (modelUrl instanceof Error) throw modelUrl;
    vitrine = await load(modelUrl, {
      backend: BACKEND,
      simd: SIMD,
      worker: USE_WORKER,
      onProgress(loaded, total) {
        if (total) {
          progress.value = loaded / total;
          status.textContent = `Downloading the model… ${formatBytes(loaded)} of ${formatBytes(total)}`;
        } else {
          progress.removeAttribute('value');
          status.textContent = `Downloading the model… ${formatBytes(loaded)}`;
        }
      },
    });
  } catch (e) {
    document.body.dataset.state = 'error';
    status.textContent = `Could not load the recommender: ${e.message}`;
    status.dataset.testid = 'load-error';
    progress.hidden = true;
    console.error(e);
    return;
  }
  catalog = vitrine.catalog;
  indexById = new Map(catalog.ids.map((id, i) => [id, i]));
  lowerTitles = catalog.titles.map((t) => t.toLowerCase());
  setCart(getCart());
  setupPanel();
  setupCategories();
  setupSearch();
  window.addEventListener('hashchange', () => route());
  // Another tab changed the history: refresh the panel.
  window.addEventListener('storage', (ev) => {
    if (ev.key === vitrine.storageKey) updatePanel();
  });
  await route();
  document.body.dataset.state = 'ready';
  // load() leaves the search index for the first search(): decode it once the first
  // shelves are asked for, while the shopper looks at them.
  const idle = window.requestIdleCallback ?? ((f) => setTimeout(f, 200));
  idle(() => vitrine.prepareSearch().catch((e) => console.warn(`vitrine: ${e.message}`)));
}

main();
