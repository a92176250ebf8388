// Usage: node bench/engines/hash-ab.mjs MODEL_FILE PKG_DIR [ROUNDS]
// The first Recommender.fromBytes of a fresh headless Chromium (/usr/bin/chromium), with
// the load's SHA-256s taken by WebCrypto (the default) and with WebCrypto's digest
// removed (so they are taken in wasm), alternating, ROUNDS (default 3) browsers each.
// Prints the milliseconds of each. MODEL_FILE must be a file without `data_crc32` (written
// before it, or stripped of it): a file with one is checked by that CRC-32 in wasm and
// never reaches WebCrypto. Needs playwright-core (npm install at the repository
// root); PKG_DIR is a wasm-bindgen --target web package (pkg/relaxed, or a named build).
import { readFileSync } from 'fs';
import { basename, join, resolve } from 'path';
import { launchChromium, serveFiles } from './serve.mjs';
const [model, pkg, rounds] = process.argv.slice(2);
if (!model || !pkg) {
  console.error('usage: node bench/engines/hash-ab.mjs MODEL_FILE PKG_DIR [ROUNDS]');
  process.exit(2);
}
{
  // A file with `data_crc32` never reaches WebCrypto: the A/B would time the same path twice.
  const file = readFileSync(model);
  const n = Number(file.readBigUInt64LE(0));
  const meta = JSON.parse(JSON.parse(file.subarray(8, 8 + n).toString('utf8')).__metadata__.vitrine);
  if ('data_crc32' in meta) {
    console.error(`${model} has data_crc32 (checked instead of the SHA-256): strip it first (tests/common/fixtures.rs, without_crc)`);
    process.exit(2);
  }
}
const server = await serveFiles((url) => (url === '/model' ? resolve(model) : join(resolve(pkg), basename(url))));
const res = { webcrypto: [], wasm: [] };
for (let i = 0; i < Number(rounds || 3); i++) {
  for (const mode of ['webcrypto', 'wasm']) {
    const browser = await launchChromium();
    const tab = await browser.newPage();
    await tab.goto(server.base + '/');
    const ms = await tab.evaluate(async (mode) => {
      const mod = await import('/pkg/vitrine.js');
      await mod.default({ module_or_path: '/pkg/vitrine_bg.wasm' });
      const bytes = new Uint8Array(await (await fetch('/model')).arrayBuffer());
      if (mode === 'wasm') SubtleCrypto.prototype.digest = undefined;
      const t = performance.now();
      await mod.Recommender.fromBytes(bytes, { storage: 'memory', backend: 'simd' });
      return Math.round(performance.now() - t);
    }, mode);
    res[mode].push(ms);
    await browser.close();
  }
}
console.log(JSON.stringify(res));
server.close();
process.exit(0);
