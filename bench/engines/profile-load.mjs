// Usage: node bench/engines/profile-load.mjs MODEL_FILE PKG_DIR
// Where a cold load's time goes, in headless Chromium (/usr/bin/chromium): a V8 CPU
// profile (DevTools protocol, 200 µs sampling) of `Recommender.fromBytes` on MODEL_FILE,
// then of `catalog()`, recording 10 viewed items and the first `recommend()`. Prints each
// step's milliseconds and the functions with the most self time (TOP, default 22); with
// WARM=N, then N warm `recommend()` calls the same way; with AGAIN=1, a second `fromBytes`
// first (the same page: compiled code, no baseline code). For
// function names, PKG_DIR must be a package built without wasm-opt (which drops them):
//   scripts/build-wasm.sh leaves the relaxed package's module, names and all, at
//   target/wasm-relaxed/wasm32-unknown-unknown/wasm/vitrine.wasm (the plain one's at
//   target/wasm32-unknown-unknown/wasm/vitrine.wasm); then
//   wasm-bindgen --target web --out-dir PKG_DIR target/…/wasm/vitrine.wasm
// Needs playwright-core (npm install at the repository root).
import { basename, join, resolve } from 'path';
import { launchChromium, serveFiles } from './serve.mjs';
const [model, pkg] = process.argv.slice(2);
if (!model || !pkg) {
  console.error('usage: node bench/engines/profile-load.mjs MODEL_FILE PKG_DIR');
  process.exit(2);
}
const server = await serveFiles((url) => (url === '/model' ? resolve(model) : join(resolve(pkg), basename(url))));
const base = server.base;
const browser = await launchChromium();
const tab = await browser.newPage();
tab.on('pageerror', (e) => console.error(e.message));
await tab.goto(base + '/');
await tab.evaluate(async () => {
  const mod = await import('/pkg/vitrine.js');
  await mod.default({ module_or_path: '/pkg/vitrine_bg.wasm' });
  window.mod = mod;
  window.bytes = new Uint8Array(await (await fetch('/model')).arrayBuffer());
});
const cdp = await tab.context().newCDPSession(tab);
await cdp.send('Profiler.enable');
await cdp.send('Profiler.setSamplingInterval', { interval: 200 });
const report = async (label, fn, arg) => {
  await cdp.send('Profiler.start');
  const ms = await tab.evaluate(fn, arg);
  const { profile } = await cdp.send('Profiler.stop');
  const self = new Map(); const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  let total = 0;
  profile.samples.forEach((id, i) => { const n = byId.get(id); const k = n.callFrame.functionName || (n.callFrame.url ? `${n.callFrame.url}:${n.callFrame.lineNumber + 1}` : '(anon)'); self.set(k, (self.get(k) || 0) + profile.timeDeltas[i]); total += profile.timeDeltas[i]; });
  console.log(`== ${label}: ${JSON.stringify(ms)}`);
  for (const [k, v] of [...self].sort((a, b) => b[1] - a[1]).slice(0, +(process.env.TOP || 22))) console.log((v / 1000).toFixed(1).padStart(8) + ' ms', k.slice(0, 110));
};
// One load of the file into window.r (the previous one freed first, when there is one).
const load = async () => { window.r?.free(); const t = performance.now(); window.r = await window.mod.Recommender.fromBytes(window.bytes, { backend: 'simd', storage: 'memory', namespace: 'p' }); return performance.now() - t; };
await report('fromBytes', load);
// AGAIN=1: then a second `fromBytes` of the same file in the same page, profiled the same
// way: what the first load spends in V8's baseline code (a call stays in it until it returns).
if (process.env.AGAIN) await report('fromBytes again', load);
await report('catalog+record+first recommend', async () => { const t = performance.now(); const ids = window.r.catalog().ids; const t1 = performance.now(); for (let i = 0; i < 10; i++) window.r.record({ item: ids[(i * 7919) % ids.length], type: 'view' }); const t2 = performance.now(); await window.r.recommend({ k: 20 }); return [t1 - t, t2 - t1, performance.now() - t2]; });
// WARM=N: then N warm recommend() calls (the same history, k = 20, as the engine bench's
// workload (b) asks), profiled together: where a request's time goes besides the head.
const warm = +(process.env.WARM || 0);
if (warm > 0) {
  await report(`${warm} warm recommend() calls (ms each, median)`, async (n) => {
    const ts = [];
    for (let i = 0; i < n; i++) { const t = performance.now(); await window.r.recommend({ k: 20, excludeSeen: false }); ts.push(performance.now() - t); }
    return ts.sort((a, b) => a - b)[n >> 1];
  }, warm);
}
await browser.close();
server.close();
