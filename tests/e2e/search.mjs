// search.mjs — the storefront's search box, end to end (called by storefront.mjs with a
// page on the home view and a non-empty browsing history).
//
// Queries are picked at run time from the served weight file's catalogue (catalog.mjs):
// a distinctive title word typed character by character with two letters swapped (the
// product must come first, its <mark> over the word), a broad word (facets, the
// personalised/text-only toggle), a nonsense word (popular suggestions) and a two-edit
// misspelling (a "Did you mean …?" link). storefront.mjs checks that no request leaves
// the page meanwhile.
import path from 'node:path';
import { pickBroadQuery, pickDidYouMean, pickNonsense, pickTypoQuery, tokens } from './catalog.mjs';

const tid = (id) => `[data-testid="${id}"]`;
const RESULTS = tid('search-results');
const INPUT = tid('search-input');
const GRID_LIMIT = 48;

/** Waits until the results show `query` and no search is pending; returns their state. */
async function settled(page, query) {
  await page.waitForFunction(
    ([sel, q]) => {
      const el = document.querySelector(sel);
      return el && el.dataset.query === q && (el.dataset.state === 'ready' || el.dataset.state === 'error');
    },
    [RESULTS, query],
    { timeout: 20000 },
  );
  return page.evaluate(
    ([sel, input]) => {
      const el = document.querySelector(sel);
      const count = el.querySelector('[data-testid="result-count"]');
      const cards = [...el.querySelectorAll('[data-testid="product-grid"] [data-testid="product-card"]')];
      const box = document.querySelector(input);
      return {
        state: el.dataset.state,
        personalized: el.dataset.personalized,
        total: Number(count.dataset.total),
        shown: Number(count.dataset.shown),
        ids: cards.map((c) => c.dataset.itemId),
        categories: cards.map((c) => c.dataset.category),
        prices: cards.map((c) => (c.dataset.price === undefined ? null : Number(c.dataset.price))),
        marks: cards.map((c) => [...c.querySelectorAll('mark')].map((m) => m.textContent)),
        historyReasons: el.querySelectorAll('[data-testid="product-grid"] li[data-kind="history"]').length,
        reasons: [...el.querySelectorAll('[data-testid="product-grid"] [data-testid="search-reasons"] li')].map((l) => l.textContent),
        searches: Number(box.dataset.searches || 0),
        maxInFlight: Number(box.dataset.maxInFlight || 0),
      };
    },
    [RESULTS, INPUT],
  );
}

async function searchCalls(page) {
  return Number((await page.getAttribute(INPUT, 'data-searches')) || 0);
}

/** Every query typed (the privacy check looks for them in every request afterwards). */
export const typedQueries = [];

/** Types `text` into the (cleared) search box key by key, as a shopper does. */
async function typeQuery(page, text, delay) {
  typedQueries.push(text);
  await page.fill(INPUT, '');
  await page.waitForFunction((sel) => !document.querySelector(sel), RESULTS);
  await page.click(INPUT);
  await page.keyboard.type(text, { delay });
}

async function checkTypo(page, check, catalog) {
  const { word, typo, item } = pickTypoQuery(catalog);
  const calls0 = await searchCalls(page);
  await typeQuery(page, typo, 60);
  const r = await settled(page, typo);
  const calls = r.searches - calls0;
  check(r.ids[0] === item.id, `typed with a typo ("${typo}" for "${word}"), the product is first`, `${item.id} "${item.title}"; got ${r.ids.slice(0, 3).join(', ')} of ${r.total}`);
  const marks = (r.marks[0] || []).map((m) => tokens(m).join(' '));
  check(marks.includes(word), 'its <mark> covers the matched word', JSON.stringify(r.marks[0]));
  check(calls >= 1 && calls <= typo.length && r.maxInFlight === 1, 'one search() per keystroke at most, never two in flight', `${calls} calls for ${typo.length} keystrokes, max in flight ${r.maxInFlight}`);
}

/** Fast typing: keystrokes outrun the searches; only the latest query's results show. */
async function checkBurst(page, check, broad) {
  const calls0 = await searchCalls(page);
  await typeQuery(page, broad, 0);
  const r = await settled(page, broad);
  const calls = r.searches - calls0;
  check(r.total > 0 && calls <= broad.length && r.maxInFlight === 1, 'fast typing: the latest query wins, no calls pile up', `${calls} calls for ${broad.length} keystrokes, ${r.total} matches`);
  return r;
}

/** Clicks the facet matching `sel` and waits for its pressed state `pressed` after a new search. */
async function clickFacet(page, sel, pressed, query) {
  await page.click(sel);
  await page.waitForFunction(([s, p]) => document.querySelector(s)?.getAttribute('aria-pressed') === p, [sel, String(pressed)], { timeout: 20000 });
  return settled(page, query);
}

async function checkCategoryFacet(page, check, broad, base) {
  const facets = await page.locator(`${RESULTS} ${tid('facet-category')}`).evaluateAll((els) =>
    els.map((e) => ({ name: e.dataset.name, count: Number(e.querySelector('[data-testid="facet-count"]').textContent) })),
  );
  const facet = facets.find((f) => f.count > 0 && f.count < base.total);
  if (!facet) {
    check(false, 'a category facet narrows the results', `no facet below the total ${base.total}: ${JSON.stringify(facets)}`);
    return;
  }
  const sel = `${RESULTS} ${tid('facet-category')}[data-name="${facet.name}"]`;
  const on = await clickFacet(page, sel, true, broad);
  const listed = await page.locator(`${RESULTS} ${tid('facet-category')}`).evaluateAll((els) => els.map((e) => e.dataset.name));
  check(
    on.total === facet.count && on.shown === Math.min(facet.count, GRID_LIMIT) && on.categories.every((c) => c === facet.name),
    `category facet "${facet.name}" narrows the results to its count`,
    `facet ${facet.count}, total ${on.total}, shown ${on.shown}, categories ${[...new Set(on.categories)].join()}`,
  );
  check(listed.length === 1 && listed[0] === facet.name, 'the active category facet is shown pressed and the counts update', listed.join());
  const off = await clickFacet(page, sel, false, broad);
  check(off.total === base.total, 'clicking the active facet again clears it', `${off.total} vs ${base.total}`);
}

async function checkPriceFacet(page, check, broad, base) {
  const bands = await page.locator(`${RESULTS} ${tid('facet-price')}`).evaluateAll((els) =>
    els.map((e) => ({ min: e.dataset.min, max: e.dataset.max, count: Number(e.querySelector('[data-testid="facet-count"]').textContent) })),
  );
  const band = bands.find((b) => b.count > 0 && b.count < base.total);
  if (!band) {
    check(false, 'a price facet narrows the results', `no band below the total ${base.total}: ${JSON.stringify(bands)}`);
    return;
  }
  const sel = `${RESULTS} ${tid('facet-price')}[data-min="${band.min}"][data-max="${band.max}"]`;
  const on = await clickFacet(page, sel, true, broad);
  const lo = band.min === '' ? -Infinity : Number(band.min);
  const hi = band.max === '' ? Infinity : Number(band.max);
  const inBand = on.prices.every((p) => p != null && p >= lo && p < hi);
  check(
    on.total === band.count && on.shown === Math.min(band.count, GRID_LIMIT) && inBand,
    `price facet [${band.min ? lo.toFixed(2) : '−∞'}, ${band.max ? hi.toFixed(2) : '∞'}) narrows the results to its count, every price in it`,
    `facet ${band.count}, total ${on.total}, shown ${on.shown}, prices ${Math.min(...on.prices).toFixed(2)}–${Math.max(...on.prices).toFixed(2)}`,
  );
  const off = await clickFacet(page, sel, false, broad);
  check(off.total === base.total, 'clicking the active price facet again clears it', `${off.total} vs ${base.total}`);
}

async function checkToggle(page, check, broad, artifacts) {
  const personal = await settled(page, broad);
  await page.check(tid('search-mode-text'));
  await page.waitForFunction((sel) => document.querySelector(sel)?.dataset.personalized === 'false', RESULTS, { timeout: 20000 });
  const text = await settled(page, broad);
  check(personal.personalized === 'true' && text.personalized === 'false', 'the toggle switches personalised → text only (personalized true → false)', `${personal.personalized} → ${text.personalized}`);
  check(text.historyReasons === 0, 'text-only results carry no "because you viewed" reason', `${text.historyReasons}`);
  const moved = personal.ids.filter((id, i) => text.ids[i] !== id).length;
  console.log(`  personalised vs text order: ${moved} of ${personal.ids.length} positions differ; ${personal.historyReasons} "because you viewed" reasons personalised, e.g. ${personal.reasons.find((t) => /because/.test(t)) || '–'}`);
  await page.check(tid('search-mode-personalised'));
  await page.waitForFunction((sel) => document.querySelector(sel)?.dataset.personalized === 'true', RESULTS, { timeout: 20000 });
  const back = await settled(page, broad);
  check(back.personalized === 'true', 'and back to personalised');
  await page.screenshot({ path: path.join(artifacts, 'storefront-search.png'), fullPage: false });
}

async function checkNoMatch(page, check, catalog) {
  const nonsense = pickNonsense(catalog);
  await page.fill(INPUT, nonsense);
  const r = await settled(page, nonsense);
  const popular = await page.locator(`${RESULTS} ${tid('suggestion-card')}`).count();
  const kinds = await page.locator(`${RESULTS} ${tid('suggestion-card')} li`).evaluateAll((els) => els.map((e) => e.dataset.kind));
  const title = (await page.locator(tid('suggestions-title')).textContent().catch(() => '')) || '';
  check(r.total === 0 && r.shown === 0 && popular > 0 && kinds.every((k) => k === 'popular') && /^Popular in /.test(title),
    `a nonsense query ("${nonsense}") shows popular suggestions, flagged as such`, `${popular} cards under "${title}"`);

  const { word, misspelt } = pickDidYouMean(catalog);
  await page.fill(INPUT, misspelt);
  const m = await settled(page, misspelt);
  const link = page.locator(`${RESULTS} ${tid('did-you-mean')}`);
  const suggestion = (await link.count()) ? await link.textContent() : null;
  check(m.total === 0 && suggestion != null, `"${misspelt}" (for "${word}") shows "Did you mean …?"`, `${suggestion}`);
  if (suggestion == null) return;
  await link.click();
  const fixed = await settled(page, suggestion);
  check(fixed.total > 0 && (await page.inputValue(INPUT)) === suggestion, 'clicking "Did you mean" searches the correction', `${suggestion}: ${fixed.total} matches`);
}

async function checkKeyboard(page, check) {
  const url = page.url();
  await page.evaluate(() => {
    window.__vitrineNoReload = true;
  });
  await page.focus(INPUT);
  await page.keyboard.press('Enter');
  await page.waitForTimeout(200);
  const kept = await page.evaluate(() => window.__vitrineNoReload === true);
  check(kept && page.url() === url, 'Enter in the search box does not reload or navigate', page.url());
  const live = await page.getAttribute(`${RESULTS} ${tid('result-count')}`, 'aria-live');
  check(live === 'polite', 'the results count is an aria-live region', `${live}`);
  await page.keyboard.press('Escape');
  await page.waitForFunction((sel) => !document.querySelector(sel), RESULTS, { timeout: 10000 });
  check((await page.inputValue(INPUT)) === '', 'Escape clears the search');
}

/**
 * Runs every search check on `page` (home view, history recorded). `catalog`: the served
 * weight file's (catalog.mjs readCatalog). Leaves the page on the home view, box empty.
 */
export async function checkSearch(page, check, catalog, artifacts) {
  await checkTypo(page, check, catalog);
  const broad = pickBroadQuery(catalog);
  const base = await checkBurst(page, check, broad);
  await checkCategoryFacet(page, check, broad, base);
  await checkPriceFacet(page, check, broad, base);
  await checkToggle(page, check, broad, artifacts);
  await checkNoMatch(page, check, catalog);
  await checkKeyboard(page, check);
}

/**
 * A page whose weight file has no search index (served by `page.route` from `bytes`):
 * typing shows a message naming search, and the title-filter fallback.
 */
export async function checkSearchUnavailable(page, check, pageUrl, bytes) {
  // A predicate, not a glob: the page's own URL carries the file name in its query.
  await page.route((url) => url.pathname.endsWith('/e2e-nosearch.vitrine'), (route) =>
    route.fulfill({ status: 200, contentType: 'application/octet-stream', body: bytes }),
  );
  await page.goto(pageUrl);
  await page.waitForSelector('body[data-state="ready"]', { timeout: 180000 });
  await page.fill(INPUT, 'heart');
  await settled(page, 'heart');
  const state = await page.getAttribute(RESULTS, 'data-state');
  const msg = (await page.locator(tid('search-error')).isVisible()) ? await page.textContent(tid('search-error')) : '';
  const fallback = await page.locator(`${RESULTS} ${tid('product-card')}`).count();
  check(state === 'error' && /search is unavailable/i.test(msg) && fallback > 0,
    'a model without a search index: the page says search is unavailable (and falls back to a title filter)', `${msg.slice(0, 90)}…; ${fallback} fallback cards`);
}
