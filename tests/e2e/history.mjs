// End-to-end test of the shopper's history across tabs (Playwright, /usr/bin/chromium).
// Run through scripts/e2e.sh, or:
//   BASE_URL=http://127.0.0.1:8080/ MODEL_URL=models/e2e-quick.vitrine node tests/e2e/history.mjs
//
// Two pages of one browser context share the origin's localStorage, as two tabs do. Each
// loads vitrine (www/vitrine.js) and records its own items at the same time as the other;
// afterwards the history must hold every event of both (the items are distinct, so the
// dedup rule — a repeated view of the same item within the window is one event — merges
// nothing) once the tabs have seen each other's writes (polled until both agree and stay
// unchanged for a second; Chromium delivers another tab's localStorage writes
// asynchronously). Rounds: worker mode with Web Locks, worker mode without Web Locks (the
// merge-on-conflict path), main-thread mode. Then the load-time migration of an old
// per-model key through the worker path, importHistory's size cap, a burst of calls in
// one tab (consecutive writes under one hold of the lock, call order kept), and a clear
// that another tab writes over before it has seen it (the clear is re-applied).
import { BASE, MODEL, LOAD_TIMEOUT, blankPage, check, finish, launchBrowser } from './harness.mjs';

const PER_TAB = Number(process.env.PER_TAB || '40');

const browser = await launchBrowser();
const context = await browser.newContext();
// A blank page on the server's origin.
const BLANK = await blankPage(context, 'e2e-history-blank.html', 'vitrine history test');
context.on('console', (m) => {
  if (m.type() === 'error') console.log(`  [console.error] ${m.text()}`);
});

/** A page on the origin with vitrine loaded as `window.v`; `locks: false` hides Web Locks. */
async function openTab({ worker = true, locks = true, namespace = 'e2e-tabs' } = {}) {
  const page = await context.newPage();
  page.on('pageerror', (e) => check(false, 'no page error', e.message));
  if (!locks) {
    await page.addInitScript(() =>
      Object.defineProperty(Navigator.prototype, 'locks', { get: () => undefined, configurable: true }),
    );
  }
  await page.goto(BLANK);
  page.setDefaultTimeout(LOAD_TIMEOUT);
  await page.evaluate(
    async ({ model, worker, namespace }) => {
      const { load } = await import('/www/vitrine.js');
      const opts = { worker, backend: 'simd' };
      if (namespace) opts.namespace = namespace;
      window.v = await load(model, opts);
    },
    { model: MODEL, worker, namespace },
  );
  return page;
}

/** Records `items` (views) in `page` as fast as the page accepts them. */
function recordAll(page, items) {
  return page.evaluate(
    (items) => Promise.all(items.map((item) => window.v.record({ item, type: 'view' }))),
    items,
  );
}

async function historyIds(page) {
  return page.evaluate(async () => (await window.v.history()).map((r) => r.item));
}

/** Both tabs' histories once they agree and stay the same for a second (the tabs see
 * each other's writes asynchronously), or the last read after SETTLE_MS. */
async function settle(a, b) {
  const deadline = Date.now() + Number(process.env.SETTLE_MS || '20000');
  let prev = '';
  for (;;) {
    const fromA = await historyIds(a);
    const fromB = await historyIds(b);
    const now = JSON.stringify([fromA, fromB]);
    if ((JSON.stringify(fromA) === JSON.stringify(fromB) && now === prev) || Date.now() > deadline) {
      return { fromA, fromB };
    }
    prev = now;
    await new Promise((r) => setTimeout(r, 1000));
  }
}

async function round(label, opts, ids) {
  const a = await openTab(opts);
  const b = await openTab(opts);
  try {
    const hasLocks = await a.evaluate(() => !!navigator.locks?.request);
    check(hasLocks === (opts.locks !== false), `${label}: Web Locks ${hasLocks ? 'present' : 'hidden'}`);
    await a.evaluate(() => window.v.clearHistory());
    // Both tabs start from the cleared history. localStorage reaches another tab
    // asynchronously: without Web Locks, a tab that records before it has seen the other
    // tab's clear merges against the history it last read and writes those events back
    // (the earlier round's, under the same ids). This round is about concurrent records,
    // so it waits until the second tab reads the clear too.
    let seen = -1;
    for (let i = 0; i < 100 && seen !== 0; i++) {
      seen = (await historyIds(b)).length;
      if (seen !== 0) await new Promise((r) => setTimeout(r, 100));
    }
    check(seen === 0, `${label}: the second tab sees the first tab's clearHistory()`, `${seen} events in the second tab (waited up to 10 s)`);
    const mineA = ids.slice(0, PER_TAB);
    const mineB = ids.slice(PER_TAB, 2 * PER_TAB);
    await Promise.all([recordAll(a, mineA), recordAll(b, mineB)]);
    const { fromA, fromB } = await settle(a, b);
    const lost = [...mineA, ...mineB].filter((id) => !fromA.includes(id));
    check(lost.length === 0, `${label}: no event lost with two tabs recording at once`, `${fromA.length} events, lost ${lost.length}: ${lost.slice(0, 5).join(',')}`);
    check(fromA.length === 2 * PER_TAB, `${label}: exactly ${2 * PER_TAB} events (nothing duplicated)`, `${fromA.length}`);
    check(JSON.stringify(fromA) === JSON.stringify(fromB), `${label}: both tabs read the same history`);
  } finally {
    await a.close();
    await b.close();
  }
}

try {
  // The catalogue's ids, from a first tab.
  const first = await openTab();
  const ids = await first.evaluate(() => window.v.catalog.ids.slice(0, 1000));
  check(ids.length >= 2 * PER_TAB, 'the model has enough items for the test', `${ids.length}`);

  // Migration through the worker path: an old per-model key with one unknown id.
  const t = Date.now() / 1000;
  const oldKey = 'vitrine:0123456789ab:history';
  await first.evaluate(
    ({ oldKey, value }) => {
      for (const k of Object.keys(localStorage)) if (k.startsWith('vitrine:')) localStorage.removeItem(k);
      localStorage.setItem(oldKey, value);
    },
    {
      oldKey,
      value: JSON.stringify({
        schema: 1,
        namespace: '0123456789ab',
        events: [
          { item: ids[0], kind: 'view', at: t - 30 },
          { item: 'no-such-item', kind: 'cart', at: t - 20 },
          { item: ids[1], kind: 'purchase', at: t - 10 },
        ],
      }),
    },
  );
  await first.close();
  const m = await openTab({ namespace: null });
  const migrated = await m.evaluate(async () => ({
    key: window.v.storageKey,
    info: await window.v.historyInfo(),
    ids: (await window.v.history()).map((r) => r.item),
    keys: Object.keys(localStorage).filter((k) => k.startsWith('vitrine:')),
  }));
  check(migrated.key === `vitrine:v2:${new URL(BASE).origin}:history`, 'default namespace is the origin', migrated.key);
  check(JSON.stringify(migrated.ids) === JSON.stringify([ids[0], ids[1]]), 'old key migrated: known events kept', migrated.ids.join());
  check(migrated.info.unknown.events === 1 && migrated.info.unknown.ids[0] === 'no-such-item', 'unknown item dropped and counted', JSON.stringify(migrated.info.unknown));
  check(JSON.stringify(migrated.keys) === JSON.stringify([migrated.key]), 'old key removed, new key written', migrated.keys.join());
  const big = await m.evaluate(async () => {
    try {
      await window.v.importHistory('x'.repeat(2 ** 20 + 1));
      return 'accepted';
    } catch (e) {
      return e.message;
    }
  });
  check(/characters, the limit is 1048576/.test(big), 'importHistory refuses an oversize export before parsing', big);
  await m.evaluate(() => window.v.clearHistory());
  const left = await m.evaluate(() => Object.keys(localStorage).filter((k) => k.startsWith('vitrine:')));
  check(left.length === 0, 'clearHistory removes every vitrine key', left.join());
  await m.close();

  // A burst of calls in one tab: consecutive writes share one hold of the Web Lock (one
  // request for the burst, not one per event), calls still run in call order (a read
  // queued between writes sees exactly the writes before it), and a bad event in the
  // middle rejects alone.
  for (const worker of [true, false]) {
    const mode = worker ? 'worker' : 'main thread';
    const t = await openTab({ worker, namespace: `e2e-burst-${worker}` });
    const burst = await t.evaluate(async (ids) => {
      const v = window.v;
      await v.clearHistory();
      const locks = navigator.locks;
      const request = locks.request.bind(locks);
      let requests = 0;
      locks.request = (...a) => {
        requests += 1;
        return request(...a);
      };
      const calls = [];
      for (let i = 0; i < 10; i++) calls.push(v.record({ item: ids[i], type: 'view' }));
      calls.push(v.record({ item: 'no-such-item', type: 'view' }));
      const between = v.history();
      for (let i = 10; i < 20; i++) calls.push(v.record({ item: ids[i], type: 'view' }));
      const settled = await Promise.allSettled(calls);
      const seen = (await between).map((r) => r.item);
      const after = (await v.history()).map((r) => r.item);
      locks.request = request;
      return {
        requests,
        rejected: settled.flatMap((r, i) => (r.status === 'rejected' ? [[i, r.reason.message]] : [])),
        seen,
        after,
      };
    }, ids);
    check(
      burst.rejected.length === 1 && burst.rejected[0][0] === 10 && /no-such-item/.test(burst.rejected[0][1]),
      `${mode}: a burst of 21 records: only the unknown item's rejects`,
      JSON.stringify(burst.rejected),
    );
    check(
      JSON.stringify(burst.seen) === JSON.stringify(ids.slice(0, 10)) && JSON.stringify(burst.after) === JSON.stringify(ids.slice(0, 20)),
      `${mode}: calls run in call order (history() between the writes sees the 10 before it; all 20 kept)`,
      JSON.stringify(burst),
    );
    check(burst.requests === 2, `${mode}: the two runs of consecutive writes take the Web Lock once each`, `${burst.requests} lock requests`);
    await t.close();
  }

  // A clear that another tab had not yet seen: that tab writes back the events it last
  // read (the stale value) plus a new one. The clearing tab re-applies its clear to that
  // write: the cleared events go again, the new one stays, in both tabs.
  for (const worker of [true, false]) {
    const mode = worker ? 'worker' : 'main thread';
    const namespace = `e2e-clear-race-${worker}`;
    const a = await openTab({ worker, namespace });
    const b = await openTab({ worker, namespace });
    try {
      await a.evaluate(() => window.v.clearHistory());
      await a.evaluate((items) => Promise.all(items.map((item) => window.v.record({ item, type: 'view' }))), ids.slice(100, 102));
      const before = await settle(a, b);
      const stale = await a.evaluate(() => localStorage.getItem(window.v.storageKey));
      await a.evaluate(() => window.v.clearHistory());
      const firstClear = Date.now();
      let seen = -1;
      for (let i = 0; i < 100 && seen !== 0; i++) {
        seen = (await historyIds(b)).length;
        if (seen !== 0) await new Promise((r) => setTimeout(r, 100));
      }
      // Tab B's late write: the value it read before the clear, with its new event.
      await b.evaluate(
        ({ stale, item }) => {
          const value = JSON.parse(stale);
          const last = value.events[value.events.length - 1];
          value.events.push({ ...last, item, at: last.at + 60 });
          localStorage.setItem(window.v.storageKey, JSON.stringify(value));
        },
        { stale, item: ids[102] },
      );
      const staleAfterMs = Date.now() - firstClear;
      const after = await settle(a, b);
      check(
        JSON.stringify(before.fromA) === JSON.stringify(ids.slice(100, 102)) && seen === 0,
        `${mode}: two events recorded, then cleared, and the other tab saw both`,
        JSON.stringify({ before, seen }),
      );
      check(staleAfterMs < 4000, `${mode}: the stale write came within the clear's 5 s repair window (this machine kept up)`, `${staleAfterMs} ms after the clear`);
      check(
        JSON.stringify(after.fromA) === JSON.stringify([ids[102]]) && JSON.stringify(after.fromB) === JSON.stringify([ids[102]]),
        `${mode}: a stale write after a clear: the cleared events stay cleared, the new event is kept (both tabs)`,
        JSON.stringify(after),
      );

      // The clear is re-applied for 5 s only: the other tab, having seen the clear,
      // imports an export taken before it after that; the import stays, the tabs go quiet.
      await a.evaluate((items) => Promise.all(items.map((item) => window.v.record({ item, type: 'view' }))), ids.slice(103, 105));
      await settle(a, b);
      const exported = await a.evaluate(() => window.v.exportHistory());
      await a.evaluate(() => window.v.clearHistory());
      const clearedAt = Date.now();
      for (let i = 0; i < 100 && (await historyIds(b)).length !== 0; i++) await new Promise((r) => setTimeout(r, 100));
      await new Promise((r) => setTimeout(r, Math.max(0, clearedAt + 5500 - Date.now())));
      await b.evaluate((json) => window.v.importHistory(json), exported);
      const imported = await settle(a, b);
      const writes = await a.evaluate(
        () =>
          new Promise((resolve) => {
            let n = 0;
            const count = () => (n += 1);
            addEventListener('storage', count);
            setTimeout(() => {
              removeEventListener('storage', count);
              resolve(n);
            }, 2000);
          }),
      );
      // (Sorted by id: the history is in time order, and the stale event was made 60 s
      // after the first two.)
      const want = JSON.stringify([ids[102], ids[103], ids[104]].sort());
      const sorted = (xs) => JSON.stringify([...xs].sort());
      check(
        sorted(imported.fromA) === want && sorted(imported.fromB) === want && writes === 0,
        `${mode}: an import 5.5 s after another tab's clear is kept, and no tab keeps rewriting the value`,
        JSON.stringify({ imported, storageEventsIn2s: writes }),
      );
    } finally {
      await a.close();
      await b.close();
    }
  }

  await round('worker + Web Locks', { worker: true, locks: true }, ids);
  await round('worker, no Web Locks (merge on conflict)', { worker: true, locks: false }, ids);
  await round('main thread + Web Locks', { worker: false, locks: true }, ids);
} catch (e) {
  check(false, 'history test ran to the end', e.stack || String(e));
} finally {
  await browser.close();
}
finish('history');
