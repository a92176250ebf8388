// Cold load of one weight file over a throttled link, loaded while it downloads
// (www/vitrine.js streamBytes + loadStream: Recommender.fromStream) against loaded once
// downloaded (fetchBytes, then Recommender.fromBytes), each in a fresh browser context,
// three of each in turns: ms from the download's start to its end, to the engine, and to
// the first recommendation. Headless Chromium's network emulation (MBPS: its download
// throughput in MB/s; about half of it is reached here, 20 ms latency).
// Usage: node scripts/serve.mjs --port 8123 &
//        BASE_URL=http://127.0.0.1:8123/ MODEL=/www/models/synthetic-1000000-int8.vitrine \
//        MBPS=50 node bench/engines/streamed-load.mjs
import { blankPage, launchBrowser } from '../../tests/e2e/harness.mjs';
const browser = await launchBrowser();
const out = { streamed: [], whole: [] };
for (const mode of ['streamed', 'whole', 'whole', 'streamed', 'streamed', 'whole']) {
  const context = await browser.newContext();
  const BLANK = await blankPage(context, 'probe.html', 'probe');
  const page = await context.newPage();
  await page.goto(BLANK);
  const cdp = await context.newCDPSession(page);
  await cdp.send('Network.enable');
  await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 20, downloadThroughput: Number(process.env.MBPS) * 1e6, uploadThroughput: 1e7 });
  const r = await page.evaluate(async ({ model, mode }) => {
    const { importPackage, packageUrls, streamBytes, loadStream } = await import('/www/vitrine.js');
    const mod = await importPackage(packageUrls());
    const t0 = performance.now();
    const s = await streamBytes(model);
    let downloaded = 0;
    s.done.then(() => (downloaded = performance.now() - t0));
    const rec = mode === 'streamed'
      ? await loadStream(mod, s, { backend: 'simd', storage: 'memory' })
      : await mod.Recommender.fromBytes(await s.done, { backend: 'simd', storage: 'memory' });
    const loaded = performance.now() - t0;
    await rec.recommend({ k: 20 });
    return { downloaded: Math.round(downloaded), loaded: Math.round(loaded), first: Math.round(performance.now() - t0) };
  }, { model: process.env.MODEL, mode });
  out[mode].push(r);
  await context.close();
}
console.log(JSON.stringify(out));
await browser.close();
