// Usage: node bench/engines/tier-profile.mjs MODEL_FILE REFERENCE_JSON PKG_DIR OUT.cpuprofile [PRE] [CALLS]
// How far V8 has optimised a package's request path after PRE requests: in headless
// Chromium (/usr/bin/chromium) one page loads the package and MODEL_FILE, records the
// reference history of REFERENCE_JSON (as ab-node.mjs), makes PRE untimed requests
// (default 60), then takes a CPU profile (20 µs sampling) of CALLS more (default 200)
// and prints their mean milliseconds. JSF passes V8 flags to Chromium
// (`JSF=--no-liftoff`: every function optimised from the start, a diagnosis only); two
// profiles, one with it and one without, show which functions still run in the baseline
// tier (`docs/benchmarks/engines-log.md`, "Per-request costs again, and V8's baseline
// tier"). PKG_DIR from `wasm-bindgen --target web` without wasm-opt keeps the names.
import { basename, join, resolve } from 'path';
import { writeFileSync } from 'fs';
import { launchChromium, serveFiles } from './serve.mjs';
const [model, refFile, pkg, out, pre = '60', calls = '200'] = process.argv.slice(2);
if (!model || !refFile || !pkg || !out) {
  console.error('usage: node bench/engines/tier-profile.mjs MODEL_FILE REFERENCE_JSON PKG_DIR OUT.cpuprofile [PRE] [CALLS]');
  process.exit(2);
}
const server = await serveFiles((url) => {
  if (url === '/model') return resolve(model);
  if (url === '/ref') return resolve(refFile);
  const m = url.match(/^\/pkg\/(.+)$/);
  return m ? join(resolve(pkg), basename(m[1])) : '';
});
const flags = process.env.JSF ? [`--js-flags=${process.env.JSF}`] : [];
const browser = await launchChromium(flags);
try {
  const tab = await browser.newPage();
  tab.on('pageerror', (e) => console.error(`page error: ${e.message}`));
  await tab.goto(`${server.base}/`);
  await tab.evaluate(async (pre) => {
    const mod = await import('/pkg/vitrine.js');
    await mod.default({ module_or_path: '/pkg/vitrine_bg.wasm' });
    const bytes = new Uint8Array(await (await fetch('/model')).arrayBuffer());
    const r = await mod.Recommender.fromBytes(bytes, { backend: 'simd', storage: 'memory', namespace: 'tier' });
    const ids = r.catalog().ids;
    const ref = await (await fetch('/ref')).json();
    const kindName = Object.fromEntries(Object.entries(ref.kinds).map(([n, i]) => [i, n]));
    const now = Math.floor(Date.now() / 1000);
    for (const e of ref.history) {
      r.record({ item: ids[e.index], type: typeof e.kind === 'string' ? e.kind : kindName[e.kind], at: now + e.atOffset });
    }
    for (let i = 0; i < pre; i++) await r.recommend({ k: 20, excludeSeen: false });
    window.rec = r;
  }, +pre);
  const cdp = await tab.context().newCDPSession(tab);
  await cdp.send('Profiler.enable');
  await cdp.send('Profiler.setSamplingInterval', { interval: 20 });
  await cdp.send('Profiler.start');
  const ms = await tab.evaluate(async (calls) => {
    const t = performance.now();
    for (let i = 0; i < calls; i++) await window.rec.recommend({ k: 20, excludeSeen: false });
    return (performance.now() - t) / calls;
  }, +calls);
  const { profile } = await cdp.send('Profiler.stop');
  writeFileSync(out, JSON.stringify(profile));
  console.log(`${calls} requests after ${pre}: ${ms.toFixed(3)} ms each; profile written to ${out}`);
} finally {
  await browser.close();
  server.close();
}
