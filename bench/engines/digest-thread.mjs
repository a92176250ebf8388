// Usage: node bench/engines/digest-thread.mjs [MIB,...]
// Whether `crypto.subtle.digest` hashes off the calling thread, in headless Chromium
// (/usr/bin/chromium): for buffers of each size (default 1,18,18,64 MiB), the
// milliseconds the call itself takes (callMs), until its promise resolves (doneMs), and
// a plain copy of the same bytes (copyMs). A digest taken on another thread returns at
// once and resolves later; one taken within the call has callMs ≈ doneMs
// (docs/benchmarks/engines-log.md, "A checksum instead of the SHA-256 on load").
// Needs playwright-core (npm install at the repository root).
import { launchChromium, serveFiles } from './serve.mjs';
const sizes = (process.argv[2] ?? '1,18,18,64').split(',').map(Number);
const server = await serveFiles(() => null);
const browser = await launchChromium();
try {
  const tab = await browser.newPage();
  await tab.goto(server.base + '/');
  const rows = await tab.evaluate(async (sizes) => {
    const out = [];
    for (const mib of sizes) {
      const b = new Uint8Array(mib << 20);
      for (let i = 0; i < b.length; i += 4096) b[i] = i & 255;
      const t0 = performance.now();
      const p = crypto.subtle.digest('SHA-256', b);
      const t1 = performance.now();
      await p;
      const t2 = performance.now();
      b.slice();
      const t3 = performance.now();
      out.push({ mib, callMs: +(t1 - t0).toFixed(1), doneMs: +(t2 - t0).toFixed(1), copyMs: +(t3 - t2).toFixed(1) });
    }
    return out;
  }, sizes);
  for (const r of rows) console.log(JSON.stringify(r));
  console.log(`chromium ${browser.version()}`);
} finally {
  await browser.close();
  server.close();
}
