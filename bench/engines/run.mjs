// Drives the engine comparison in headless Chromium (playwright-core, /usr/bin/chromium):
// per catalogue size the warm page (page.html: agreement, then interleaved head and
// recommend() timings, SIMD ceilings), the same with ONNX Runtime Web's threads on a
// cross-origin-isolated page, and cold starts (cold.html, a fresh browser context per
// load, engines interleaved) with bytes downloaded and the renderer's peak memory.
// Writes JSON, an SVG chart and a Markdown table (stdout and README-ready).
// Usage: BASE_URL=http://127.0.0.1:PORT/ node bench/engines/run.mjs [--sizes 4000,100000]
//   [--runs 25] [--warmup 5] [--cold-runs 7] [--no-threads] [--out artifacts/engine-bench.json]
//   [--engines vitrine-relaxed,vitrine-plain,ort,ort-int8,tfjs] (the warm page's engines;
//   ort-int8: ONNX Runtime Web over the int8 item table, a rival like the others)
//   [--parts warm,threads,cold] (which measurements)
//   [--cold-engines none,vitrine,vitrine-main,vitrine-steps,ort,ort-int8,tfjs] (cold starts;
//   a vitrine engine with the suffix `:b`, e.g. vitrine-main:b, loads the package in
//   --cold-pkg-b DIR/ (relative to the repository root): an A/B of two builds in one run;
//   and/or the loader, www/'s vitrine.js and worker.js, from --cold-www-b DIR/, a copy of
//   www/ with a change: an A/B of two loaders with the same package)
//   [--int8] (the int8 files and exports of `scripts/engine-bench.sh --int8`)
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const args = process.argv.slice(2);
const arg = (name, fallback) => {
  const i = args.indexOf(name);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : fallback;
};
const base = process.env.BASE_URL;
if (!base) throw new Error('BASE_URL is not set (scripts/engine-bench.sh sets it)');
const sizes = arg('--sizes', '4000,100000').split(',').map(Number);
const runs = Number(arg('--runs', '25'));
const warmup = Number(arg('--warmup', '5'));
const coldRuns = Number(arg('--cold-runs', '7'));
const parts = arg('--parts', 'warm,threads,cold').split(',');
const threads = !args.includes('--no-threads') && parts.includes('threads');
const warmEngines = arg('--engines', 'vitrine-relaxed,vitrine-plain,ort,ort-int8,tfjs');
const out = path.resolve(root, arg('--out', 'artifacts/engine-bench.json'));
const log = (m) => process.stderr.write(`[engine-bench] ${m}\n`);
const int8 = args.includes('--int8');
const pkgB = arg('--cold-pkg-b', null);
const wwwB = arg('--cold-www-b', null);
// Above 200,000 items the file is int8 anyway (scripts/engine-bench.sh).
const int8At = (n) => int8 || n > 200000;
// `--mlp-hidden W` (scripts/engine-bench.sh): synthetic models with that head, their own files.
const mlpHidden = arg('--mlp-hidden', null);
const tagOf = (n) => (int8 ? `${n}-int8` : `${n}`) + (mlpHidden ? `-h${mlpHidden.replaceAll(',', '-')}` : '');
const dirOf = (n) => `artifacts/engines/${tagOf(n)}/`;
const modelOf = (n) => `www/models/synthetic-${tagOf(n)}.vitrine`;
const median = (xs) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
});
const cdp = await browser.newBrowserCDPSession();

/** Peak resident memory (VmHWM) of the largest renderer process alive, bytes. */
async function rendererPeak() {
  const { processInfo } = await cdp.send('SystemInfo.getProcessInfo');
  let peak = 0;
  for (const p of processInfo.filter((x) => x.type === 'renderer')) {
    try {
      const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${p.id}/status`, 'utf8'));
      if (m) peak = Math.max(peak, Number(m[1]) * 1024);
    } catch { /* the process ended */ }
  }
  return peak;
}

/** Opens `url` in `context`, waits for data-state done|error, returns the result JSON. */
async function runPage(context, url, timeout = 1800000) {
  const page = await context.newPage();
  page.on('console', (m) => { if (m.type() === 'error') log(`console: ${m.text()}`); });
  await page.goto(url);
  await page.waitForFunction(() => ['done', 'error'].includes(document.body.dataset.state), null, { timeout });
  const state = await page.evaluate(() => document.body.dataset.state);
  const status = await page.textContent('[data-testid="bench-status"]');
  if (state !== 'done') throw new Error(`${url}: ${status}`);
  const r = JSON.parse(await page.textContent('[data-testid="bench-result"]'));
  return { page, r };
}

/** A context whose HTML and scripts carry COOP/COEP, so the page is cross-origin isolated. */
async function isolatedContext() {
  const ctx = await browser.newContext();
  await ctx.route(/\.(html|m?js)(\?.*)?$/, async (route) => {
    const resp = await route.fetch();
    await route.fulfill({ response: resp, headers: { ...resp.headers(), 'cross-origin-opener-policy': 'same-origin', 'cross-origin-embedder-policy': 'require-corp' } });
  });
  return ctx;
}

/** Raw and gzip -9 sizes of a served file (URL → path under the repository); null for a
 * URL with no file behind it (a 404, e.g. a favicon probe). */
function sizes_(url) {
  const p = path.join(root, decodeURIComponent(new URL(url).pathname));
  if (!fs.existsSync(p) || !fs.statSync(p).isFile()) return null;
  const b = fs.readFileSync(p);
  return { path: path.relative(root, p), raw: b.length, gzip: zlib.gzipSync(b, { level: 9 }).length };
}
const isWeights = (p) => /\.(vitrine|onnx)$|tensors\.(bin|json)$/.test(p);
const isHarness = (p) => p.startsWith('bench/engines/') && !p.includes('node_modules') || p.endsWith('reference.json');

const report = { date: new Date().toISOString(), sizes, runs, warmup, coldRuns, warm: [], threaded: [], cold: [] };
try {
  for (const n of sizes) {
    const q = `dir=${dirOf(n)}&model=${modelOf(n)}&runs=${runs}&warmup=${warmup}&int8=${int8At(n) ? 1 : 0}`;
    let ctx;
    if (parts.includes('warm')) {
      log(`${n} items: warm page (${warmEngines}; one thread)`);
      ctx = await browser.newContext();
      const { r } = await runPage(ctx, `${base}bench/engines/page.html?${q}&engines=${warmEngines}`);
      report.warm.push(r);
      await ctx.close();
    }
    if (threads) {
      log(`${n} items: onnxruntime-web with threads (cross-origin-isolated page) beside vitrine relaxed`);
      ctx = await isolatedContext();
      const { r: rt } = await runPage(ctx, `${base}bench/engines/page.html?${q}&engines=${warmEngines.split(',')[0]},ort-threads`);
      report.threaded.push(rt);
      await ctx.close();
    }
    if (!parts.includes('cold')) continue;
    log(`${n} items: ${coldRuns} cold starts per engine, interleaved (every other round in reverse order)`);
    const engines = arg('--cold-engines', 'none,vitrine,vitrine-main,vitrine-steps,ort,ort-int8,tfjs').split(',');
    const cold = Object.fromEntries(engines.map((e) => [e, { firstMs: [], readyMs: [], peakBytes: [], resources: null, marks: [] }]));
    for (let i = 0; i < coldRuns; i++) {
      // Every other round in reverse order: the place in a round moves a load by up to
      // 0.1 s on this VM (the first of two A/B engines was the slower one in three runs
      // of 11 rounds, whichever build it was), so each engine takes each place as often.
      for (const e of i % 2 ? [...engines].reverse() : engines) {
        const c = await browser.newContext();
        // Every response of the context, the Worker's included (the page's resource
        // timing does not see a Worker's fetches).
        const fetched = [];
        c.on('response', (resp) => { if (resp.status() === 200) fetched.push(resp.url()); });
        const [name, variant] = e.split(':');
        if (variant && !pkgB && !wwwB) throw new Error(`${e}: neither --cold-pkg-b nor --cold-www-b is set`);
        // A loader from another directory keeps the default package unless one is named.
        const pkgParam = variant ? `&pkg=${encodeURIComponent(pkgB ?? 'pkg/relaxed/')}${wwwB ? `&www=${encodeURIComponent(wwwB)}` : ''}` : '';
        const { r: rc } = await runPage(c, `${base}bench/engines/cold.html?engine=${name}${pkgParam}&dir=${dirOf(n)}&model=${modelOf(n)}&int8=${int8At(n) ? 1 : 0}`, 600000);
        cold[e].peakBytes.push(await rendererPeak());
        cold[e].firstMs.push(rc.marks.first);
        cold[e].readyMs.push(rc.marks.ready ?? rc.marks.first);
        cold[e].marks.push(rc.marks);
        cold[e].resources ??= [...new Set(fetched)];
        await c.close();
      }
    }
    const row = { nItems: n, engines: {} };
    for (const e of engines) {
      const files = cold[e].resources.map((u) => sizes_(u)).filter((f) => f && !isHarness(f.path));
      const sum = (fs_, k) => fs_.reduce((a, f) => a + f[k], 0);
      const code = files.filter((f) => !isWeights(f.path)), weights = files.filter((f) => isWeights(f.path));
      row.engines[e] = {
        firstMedianMs: median(cold[e].firstMs), firstBestMs: Math.min(...cold[e].firstMs), readyMedianMs: median(cold[e].readyMs),
        peakRendererBytes: median(cold[e].peakBytes),
        code: { raw: sum(code, 'raw'), gzip: sum(code, 'gzip'), files: code },
        weights: { raw: sum(weights, 'raw'), gzip: sum(weights, 'gzip'), files: weights.map((f) => f.path) },
        firstMs: cold[e].firstMs,
        marks: cold[e].marks,
      };
    }
    report.cold.push(row);
    fs.mkdirSync(path.dirname(out), { recursive: true });
    fs.writeFileSync(out, JSON.stringify(report, null, 2));
  }
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(out, JSON.stringify(report, null, 2));
} finally {
  await browser.close();
}

// ------------------------------------------------------------------ tables and chart
const versions = {};
for (const w of report.warm) for (const x of w.results) versions[x.name] = x.version;
const eng = (w, key) => w.results.find((x) => x.engine === key);
const fmt = (x, d = 2) => (x == null ? '–' : x.toFixed(d));
const lines = [];
lines.push(`Versions: ${Object.entries(versions).map(([k, v]) => `${k} ${v}`).join(', ')}; ${report.warm[0]?.userAgent.match(/Chrome\/[\d.]+/)?.[0] ?? ''} headless, ${runs} calls after ${warmup} warm-up rounds, interleaved.`);
lines.push('');
lines.push('Median (best) ms; ratios vitrine relaxed / the faster single-threaded rival, lower is better: of the medians (of the best calls).');
lines.push('');
lines.push('| items | workload | vitrine relaxed | vitrine plain | ORT-web | ORT-web int8 | TF.js | ORT-web threads¹ | relaxed / faster rival | relaxed / ORT threads¹ |');
lines.push('|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|');
for (const [i, w] of report.warm.entries()) {
  const t = report.threaded[i];
  for (const wl of ['head', 'recommend']) {
    const get = (res, k, st) => (res ? eng(res, k)?.[wl][st] : undefined);
    const cell = (res, k) => (get(res, k, 'medianMs') == null ? '–' : `${fmt(get(res, k, 'medianMs'))} (${fmt(get(res, k, 'bestMs'))})`);
    const ratio = (st) => {
      const rival = Math.min(...['ort', 'ort-int8', 'tfjs'].map((k) => get(w, k, st) ?? Infinity));
      return fmt(get(w, 'vitrine-relaxed', st) / rival);
    };
    const tr = (st) => fmt(get(t, 'vitrine-relaxed', st) / get(t, 'ort-threads', st));
    lines.push(`| ${w.nItems.toLocaleString('en')} | ${wl === 'head' ? '(a) head from u' : '(b) recommend() top-20'} | ${cell(w, 'vitrine-relaxed')} | ${cell(w, 'vitrine-plain')} | ${cell(w, 'ort')} | ${cell(w, 'ort-int8')} | ${cell(w, 'tfjs')} | ${cell(t, 'ort-threads')} | **${ratio('medianMs')}×** (${ratio('bestMs')}×) | ${t ? `${tr('medianMs')}× (${tr('bestMs')}×)` : '–'} |`);
  }
}
// The int8 multiply form each vitrine build's first requests chose (stats().dotForm).
const forms = report.warm.map((w) => `${w.nItems.toLocaleString('en')} items: ${['vitrine-relaxed', 'vitrine-plain'].map((k) => `${k.slice(8)} ${eng(w, k)?.dotForm ?? '–'}`).join(', ')}`);
if (report.warm.length) lines.push('', `vitrine's int8 multiply form (stats().dotForm; – where there is none to choose): ${forms.join('; ')}.`);
lines.push('');
lines.push('| items | engine | cold start to first recommendation, median (best) ms | JS + wasm raw / gzip KB | weights raw MB | renderer peak RSS MiB |');
lines.push('|---:|---|---:|---:|---:|---:|');
for (const c of report.cold) {
  for (const [e, x] of Object.entries(c.engines)) {
    lines.push(`| ${c.nItems} | ${e === 'none' ? 'empty page (baseline)' : e} | ${fmt(x.firstMedianMs, 0)} (${fmt(x.firstBestMs, 0)}) | ${fmt(x.code.raw / 1024, 0)} / ${fmt(x.code.gzip / 1024, 0)} | ${fmt(x.weights.raw / 1e6, 1)} | ${fmt(x.peakRendererBytes / 2 ** 20, 0)} |`);
  }
}
lines.push('');
for (const c of report.cold) {
  const e = c.engines;
  const r = (a, b, k) => (e[a] && e[b] ? fmt(k(e[a]) / k(e[b])) : '–');
  const first = (x) => x.firstMedianMs, gz = (x) => x.code.gzip;
  const st = e['vitrine-steps']?.marks;
  if (st?.length) {
    const m = (k) => fmt(median(st.map((x) => x[k])), 0);
    lines.push(`${c.nItems.toLocaleString('en')} items, vitrine's main-thread cold start step by step (median ms since navigation): package JS imported ${m('pkgImported')}, weights fetched ${m('weightsFetched')}, wasm compiled and instantiated ${m('wasmInstantiated')}, \`Recommender.fromBytes\` done ${m('ready')}, history recorded ${m('recorded')}, first recommendation ${m('first')}.`);
    lines.push('');
  }
  for (const name of Object.keys(e).filter((k) => /^vitrine(-main)?(:b)?$/.test(k))) {
    const how = `${name.startsWith('vitrine-main') ? 'on the main thread' : 'with the Worker'}${name.endsWith(':b') ? ` (${[pkgB && `package ${pkgB}`, wwwB && `loader ${wwwB}`].filter(Boolean).join(', ')})` : ''}`;
    const ms = e[name].marks;
    if (!ms?.length) continue;
    const m = (k) => fmt(median(ms.map((x) => x[k])), 0);
    lines.push(`${c.nItems.toLocaleString('en')} items, \`load()\` ${how} (median ms since navigation): done ${m('ready')}, history recorded ${m('recorded')}, first recommendation ${m('first')}.`);
    lines.push('');
  }
  const int8Ort = e['ort-int8'] ? ` (ORT-web int8: ${r('vitrine', 'ort-int8', first)}× with the Worker, ${r('vitrine-main', 'ort-int8', first)}× without)` : '';
  lines.push(`${c.nItems.toLocaleString('en')} items, vitrine / rival (lower is better): cold start (median) with the Worker ${r('vitrine', 'ort', first)}× ORT-web, ${r('vitrine', 'tfjs', first)}× TF.js; without it ${r('vitrine-main', 'ort', first)}× ORT-web, ${r('vitrine-main', 'tfjs', first)}× TF.js${int8Ort}. JS + wasm gzip: ${r('vitrine', 'ort', gz)}× ORT-web, ${r('vitrine', 'tfjs', gz)}× TF.js.`);
  lines.push('');
}
lines.push(`¹ A separate cross-origin-isolated page (COOP/COEP) with ORT's default thread count (navigator.hardwareConcurrency = ${report.threaded[0]?.hardwareConcurrency ?? '?'}), beside vitrine relaxed (one thread) in the same page; the ratio is from that page.`);
const md = lines.join('\n');
fs.writeFileSync(out.replace(/\.json$/, '.md'), md + '\n');
fs.writeFileSync(out.replace(/\.json$/, '.svg'), chart(report));
console.log(md);

/** Log-log chart of median recommend() and head latency against catalogue size. */
function chart(rep) {
  const W = 640, H = 400, L = 60, R = 170, T = 20, B = 50;
  const series = [
    ['vitrine-relaxed', '#1b7f3b'], ['vitrine-plain', '#7fbf7f'], ['ort', '#1f5fbf'], ['ort-int8', '#7f9fdf'], ['tfjs', '#d9822b'],
  ];
  const pts = [];
  for (const w of rep.warm) for (const [k] of series) {
    const x = eng(w, k);
    if (x) for (const wl of ['recommend', 'head']) pts.push({ k, wl, n: w.nItems, ms: x[wl].medianMs });
  }
  const ns = pts.map((p) => p.n), ms = pts.map((p) => p.ms).filter((v) => v > 0);
  const [x0, x1] = [Math.log10(Math.min(...ns)) - 0.1, Math.log10(Math.max(...ns)) + 0.1];
  const [y0, y1] = [Math.floor(Math.log10(Math.min(...ms))), Math.ceil(Math.log10(Math.max(...ms)))];
  const sx = (n) => L + ((Math.log10(n) - x0) / (x1 - x0)) * (W - L - R);
  const sy = (v) => T + (1 - (Math.log10(v) - y0) / (y1 - y0 || 1)) * (H - T - B);
  let s = `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">\n`;
  s += `<rect width="${W}" height="${H}" fill="white"/>\n`;
  for (let e = y0; e <= y1; e++) s += `<line x1="${L}" x2="${W - R}" y1="${sy(10 ** e)}" y2="${sy(10 ** e)}" stroke="#ddd"/><text x="${L - 6}" y="${sy(10 ** e) + 4}" text-anchor="end">${10 ** e} ms</text>\n`;
  for (const n of [...new Set(ns)]) s += `<text x="${sx(n)}" y="${H - B + 18}" text-anchor="middle">${n.toLocaleString('en')}</text>\n`;
  s += `<text x="${(L + W - R) / 2}" y="${H - 10}" text-anchor="middle">catalogue size (items, log scale)</text>\n`;
  series.forEach(([k, col], i) => {
    for (const wl of ['recommend', 'head']) {
      const p = pts.filter((q) => q.k === k && q.wl === wl && q.ms > 0).sort((a, b) => a.n - b.n);
      if (!p.length) continue;
      const dash = wl === 'head' ? ' stroke-dasharray="5,4"' : '';
      s += `<polyline fill="none" stroke="${col}" stroke-width="2"${dash} points="${p.map((q) => `${sx(q.n).toFixed(1)},${sy(q.ms).toFixed(1)}`).join(' ')}"/>\n`;
      for (const q of p) s += `<circle cx="${sx(q.n).toFixed(1)}" cy="${sy(q.ms).toFixed(1)}" r="3" fill="${col}"/>\n`;
    }
    s += `<line x1="${W - R + 10}" x2="${W - R + 30}" y1="${T + 10 + i * 18}" y2="${T + 10 + i * 18}" stroke="${col}" stroke-width="2"/><text x="${W - R + 35}" y="${T + 14 + i * 18}">${k}</text>\n`;
  });
  s += `<text x="${W - R + 10}" y="${T + 100}">solid: recommend() top-20</text><text x="${W - R + 10}" y="${T + 116}">dashed: head from u</text>\n`;
  s += `<text x="${L}" y="${T - 6}">median latency, one thread, headless Chromium (log scale)</text>\n</svg>\n`;
  return s;
}
