// app.js — the vitrine demo storefront: catalog, search, categories, product pages, cart,
// and three recommendation shelves, all computed in this browser by vitrine.
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
      return `often bought with “${r.title}”`;
    case 'popular':
      return 'popular in this store';
    case 'promoted':
      return 'promoted';
    case 'boosted':
      return 'featured';
    case 'new':
      return 'new arrival';
    default:
      return r.kind;
  }
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
      rec.reasons.slice(0, 2).map((r) => h('li', { 'data-kind': r.kind, text: reasonText(r) })),
    ),
  );
}

/**
 * A shelf element that fills itself with recommendations.
 * @param {string} testid
 * @param {string} title
 * @param {object} options recommend() options
 * @param {number} token render token (stale renders are dropped)
 */
function shelf(testid, title, options, token) {
  const list = h('div', { class: 'shelf-items', testid: `${testid}-items` }, h('p', { class: 'muted', text: 'Scoring…' }));
  const el = h('section', { class: 'shelf', testid, 'data-state': 'loading' }, h('h2', { text: title }), list);
  vitrine
    .recommend(options)
    .then((recs) => {
      if (token !== renderToken) return;
      list.replaceChildren(
        ...(recs.length ? recs.map(recCard) : [h('p', { class: 'muted', text: 'Nothing to suggest yet.' })]),
      );
      el.dataset.state = 'ready';
      updatePanel();
    })
    .catch((e) => {
      if (token !== renderToken) return;
      list.replaceChildren(h('p', { class: 'error', text: `Could not score: ${e.message}` }));
      el.dataset.state = 'error';
    });
  return el;
}

function grid(items, testid = 'product-grid') {
  return h('div', { class: 'grid', testid }, items.map(productCard));
}

// ---------------------------------------------------------------------------------------
// Views.

function searchMatches() {
  const terms = query.toLowerCase().split(/\s+/).filter(Boolean);
  const out = [];
  for (let i = 0; i < catalog.ids.length && out.length < GRID_LIMIT; i++) {
    if (terms.every((t) => lowerTitles[i].includes(t))) out.push(itemOf(catalog.ids[i]));
  }
  return out;
}

function homeView(token) {
  const matches = searchMatches();
  const heading = query ? `Results for “${query}”` : 'All products';
  return [
    query ? null : shelf('shelf-for-you', 'Recommended for you', { k: 12 }, token),
    h(
      'section',
      { class: 'products' },
      h('h2', {}, heading, ' ', h('small', { testid: 'result-count', text: `${matches.length}${matches.length === GRID_LIMIT ? '+' : ''} shown` })),
      matches.length ? grid(matches) : h('p', { class: 'muted', testid: 'no-results', text: 'No products match.' }),
    ),
    query ? shelf('shelf-for-you', 'Recommended for you', { k: 12 }, token) : null,
  ];
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
    shelf('shelf-similar', 'Similar items', { k: 8, context: id }, token),
    shelf('shelf-for-you', 'Recommended for you', { k: 8, exclude: [id] }, token),
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
    cart.length
      ? shelf('shelf-bought-together', 'Frequently bought together', { k: 8, basket: cart }, token)
      : shelf('shelf-for-you', 'Recommended for you', { k: 8 }, token),
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

function setupSearch() {
  const input = $('[data-testid="search-input"]');
  let timer;
  input.addEventListener('input', () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      query = input.value.trim();
      if (location.hash && location.hash !== '#/') location.hash = '#/';
      else route();
    }, 80);
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
}

main();
