// shelves.mjs — the storefront's scenario shelves, checked on the page as a shopper sees
// them (tests/e2e/storefront.mjs calls these after browsing): the shelves of one page
// never show the same product twice (one page() call), and each shelf does what its title
// says — the promoted deal in the first "for you" slot with its reason, "new in" holds only
// new products (recomputed here from the weight file's dates), "other departments" holds
// none of the history's departments, "similar items" and "frequently bought together"
// explain themselves by the product and the basket.
import { newItemIds } from './catalog.mjs';

const tid = (id) => `[data-testid="${id}"]`;

/** The cards of a ready shelf: `{ id, category, kinds }` (kinds: its reasons, in order). */
async function cards(page, testid) {
  const shelf = page.locator(`${tid(testid)}[data-state="ready"]`);
  await shelf.waitFor({ timeout: 60000 });
  return shelf.locator(tid('rec-card')).evaluateAll((els) =>
    els.map((e) => ({
      id: e.dataset.itemId,
      category: e.querySelector('.card-meta span')?.textContent ?? '',
      kinds: [...e.querySelectorAll('[data-testid="rec-reasons"] li')].map((li) => li.dataset.kind),
      reasons: [...e.querySelectorAll('[data-testid="rec-reasons"] li')].map((li) => li.textContent),
    })),
  );
}

/** Checks that no product appears on two of `lists` (name → cards). */
function checkDistinct(check, what, lists) {
  const seen = new Map();
  const repeats = [];
  for (const [name, list] of Object.entries(lists)) {
    for (const c of list) {
      if (seen.has(c.id)) repeats.push(`${c.id} on ${seen.get(c.id)} and ${name}`);
      else seen.set(c.id, name);
    }
  }
  const sizes = Object.entries(lists).map(([n, l]) => `${n} ${l.length}`).join(', ');
  check(repeats.length === 0 && seen.size > 0, `${what}: no product on two shelves`, repeats.join('; ') || sizes);
}

/**
 * Home page (after browsing): for you with the deal of the day, new in, other departments.
 * @param {import('playwright-core').Page} page
 * @param {(ok: boolean, what: string, detail?: string) => void} check
 * @param {{ items: { id: string, category: string, added: number|null }[] }} catalog
 */
export async function checkHomeShelves(page, check, catalog) {
  const forYou = await cards(page, 'shelf-for-you');
  const fresh = await cards(page, 'shelf-new');
  const other = await cards(page, 'shelf-other-departments');
  checkDistinct(check, 'home page', { 'for you': forYou, 'new in': fresh, 'other departments': other });

  const deals = ((await page.getAttribute(tid('shelf-for-you'), 'data-promoted-ids')) || '').split(' ').filter(Boolean);
  const first = forYou[0];
  check(
    deals.length === 3 && first && deals.includes(first.id) && first.kinds[0] === 'promoted' && /deal of the day/.test(first.reasons[0]),
    'promotion: a deal of the day takes the first "for you" slot, its reason says so',
    first ? `${first.id} [${first.reasons.join(' | ')}], deals ${deals.join(' ')}` : 'empty shelf',
  );
  check(forYou.slice(1).every((c) => !c.kinds.includes('promoted')), 'promotion: one slot only');

  const isNew = newItemIds(catalog);
  check(
    fresh.length > 0 && isNew.size > 0 && fresh.every((c) => isNew.has(c.id) && c.kinds.includes('new')),
    'new in: only new products (newest tenth by date), each with the "new arrival" reason',
    `${fresh.length} cards, ${isNew.size} new products in the catalogue; ${fresh.slice(0, 3).map((c) => c.reasons.join(' | ')).join(' / ')}`,
  );

  const byId = new Map(catalog.items.map((it) => [it.id, it.category]));
  const viewed = await page.locator(tid('history-item')).evaluateAll((els) => els.map((e) => e.dataset.itemId));
  const historyCats = new Set(viewed.map((id) => byId.get(id)));
  const inside = other.filter((c) => historyCats.has(c.category));
  check(
    viewed.length > 0 && other.length > 0 && inside.length === 0,
    'other departments: none of the history\'s departments',
    `history departments: ${[...historyCats].join(', ')}; shelf: ${[...new Set(other.map((c) => c.category))].join(', ')}`,
  );
  const departments = new Set(other.map((c) => c.category));
  check(departments.size >= Math.min(3, other.length), 'other departments: spread over several departments (diversity)', `${departments.size} departments in ${other.length} cards`);
}

/**
 * Product page: similar items, frequently bought together, for you.
 * @param {import('playwright-core').Page} page
 * @param {(ok: boolean, what: string, detail?: string) => void} check
 * @param {string} productId
 */
export async function checkProductShelves(page, check, productId) {
  const similar = await cards(page, 'shelf-similar');
  const together = await cards(page, 'shelf-bought-together');
  const forYou = await cards(page, 'shelf-for-you');
  checkDistinct(check, 'product page', { similar, 'bought together': together, 'for you': forYou });
  const all = [...similar, ...together, ...forYou];
  check(all.every((c) => c.id !== productId), 'product page: the product itself is on no shelf');
  check(
    similar.length > 0 && similar.every((c) => c.kinds[0] === 'similar'),
    'similar items: each explained by the product first',
    similar.slice(0, 2).map((c) => c.reasons.join(' | ')).join(' / '),
  );
  check(
    together.length > 0 && together[0].kinds.includes('bought-together') && together.every((c) => c.kinds.length > 0),
    'frequently bought together: the first explained by the basket, every one explained',
    together.slice(0, 2).map((c) => c.reasons.join(' | ')).join(' / '),
  );
}

/**
 * Cart page: frequently bought together and for you, distinct, none of the cart's items.
 * @param {import('playwright-core').Page} page
 * @param {(ok: boolean, what: string, detail?: string) => void} check
 * @param {string[]} cart
 */
export async function checkCartShelves(page, check, cart) {
  const together = await cards(page, 'shelf-bought-together');
  const forYou = await cards(page, 'shelf-for-you');
  checkDistinct(check, 'cart page', { 'bought together': together, 'for you': forYou });
  check(
    together.length > 0 && [...together, ...forYou].every((c) => !cart.includes(c.id)),
    'cart page: no shelf shows an item of the cart',
  );
}
