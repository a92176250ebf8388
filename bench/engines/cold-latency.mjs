// Cold start over an emulated link with latency (headless Chromium's network emulation,
// set before the navigation): the cold-start page of the engine bench (cold.html), one
// fresh browser context per load, the engines in turns (every other round reversed), as
// run.mjs's cold part does on the plain loopback, where a request's round trip costs
// almost nothing and so a change in how many requests wait for each other does not show.
// Prints each engine's median (quartiles) of the first recommendation and of load()'s
// end, in ms since navigation, and writes them with every load's marks to OUT.
// Usage (the repository served at BASE_URL by `node scripts/serve.mjs --port PORT --gzip`,
// which sends code and JSON gzip-encoded as a production host would, the weight files as
// they are: the link's throughput limits the bytes on the wire; the model and its export
// made by scripts/engine-bench.sh --int8 --sizes N):
//   BASE_URL=http://127.0.0.1:PORT/ [LATENCY=40] [MBPS=10] [ROUNDS=9] \
//   [ENGINES=vitrine-main,vitrine-main:b,vitrine,vitrine:b,tfjs] [WWW_B=artifacts/www-old/] \
//   [PKG_B=pkg/relaxed/] [N=4000] [OUT=artifacts/cold-latency.json] node bench/engines/cold-latency.mjs
// An engine with the suffix `:b` takes its loader from WWW_B (a copy of www/ to compare)
// and the package from PKG_B, as run.mjs's --cold-www-b / --cold-pkg-b do.
// LATENCY: ms added to every request's round trip; MBPS: download throughput in MB/s.
import fs from 'node:fs';
import { launchChromium } from './serve.mjs';

const env = process.env;
const base = env.BASE_URL;
if (!base) {
  console.error('BASE_URL is not set (the repository served over HTTP)');
  process.exit(2);
}
const latency = Number(env.LATENCY ?? 40);
const mbps = Number(env.MBPS ?? 10);
const rounds = Number(env.ROUNDS ?? 9);
const n = Number(env.N ?? 4000);
const engines = (env.ENGINES ?? 'vitrine-main,vitrine-main:b,vitrine,vitrine:b,tfjs').split(',');
const wwwB = env.WWW_B ?? null;
const pkgB = env.PKG_B ?? 'pkg/relaxed/';
const out = env.OUT ?? 'artifacts/cold-latency.json';
if (engines.some((e) => e.endsWith(':b')) && !wwwB && !env.PKG_B) {
  console.error('an engine with :b needs WWW_B or PKG_B');
  process.exit(2);
}
const dir = `artifacts/engines/${n}-int8/`;
const model = `www/models/synthetic-${n}-int8.vitrine`;

const browser = await launchChromium();
const loads = Object.fromEntries(engines.map((e) => [e, []]));
for (let i = 0; i < rounds; i++) {
  for (const e of i % 2 ? [...engines].reverse() : engines) {
    const context = await browser.newContext();
    const page = await context.newPage();
    const cdp = await context.newCDPSession(page);
    await cdp.send('Network.enable');
    await cdp.send('Network.emulateNetworkConditions', {
      offline: false,
      latency,
      downloadThroughput: mbps * 1e6,
      uploadThroughput: mbps * 1e6,
    });
    const [name, variant] = e.split(':');
    const b = variant ? `&pkg=${encodeURIComponent(pkgB)}${wwwB ? `&www=${encodeURIComponent(wwwB)}` : ''}` : '';
    await page.goto(`${base}bench/engines/cold.html?engine=${name}${b}&dir=${dir}&model=${model}&int8=1`);
    await page.waitForFunction(() => ['done', 'error'].includes(document.body.dataset.state), null, { timeout: 120000 });
    const text = await page.textContent('[data-testid="bench-result"]');
    if ((await page.evaluate(() => document.body.dataset.state)) !== 'done') throw new Error(`${e}: ${text}`);
    loads[e].push(JSON.parse(text).marks);
    await context.close();
  }
}
await browser.close();

const quartiles = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const at = (q) => s[Math.min(s.length - 1, Math.round(q * (s.length - 1)))];
  return [at(0.5), at(0.25), at(0.75)].map(Math.round);
};
const summary = {};
console.log(`${n} items, ${latency} ms latency, ${mbps} MB/s, ${rounds} loads each (median, quartiles; ms since navigation)`);
for (const e of engines) {
  const first = quartiles(loads[e].map((m) => m.first));
  const ready = quartiles(loads[e].map((m) => m.ready ?? m.first));
  summary[e] = { first, ready };
  console.log(`${e.padEnd(16)} first recommendation ${first[0]} (${first[1]}–${first[2]}), ready ${ready[0]} (${ready[1]}–${ready[2]})`);
}
fs.writeFileSync(out, JSON.stringify({ n, latency, mbps, rounds, summary, loads }, null, 1));
console.log(`wrote ${out}`);
