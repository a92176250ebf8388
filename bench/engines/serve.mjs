// The local side of the Chromium scripts (requests-chromium.mjs, profile-load.mjs): a
// server on 127.0.0.1 that answers `/` with a blank module page and any other path with
// the file `fileOf(path)` names (404 when it names none or none exists), and headless
// Chromium (/usr/bin/chromium, playwright-core from the repository root).
import { readFileSync, statSync } from 'fs';
import { createServer } from 'http';
import { createRequire } from 'module';
import { resolve } from 'path';

const TYPES = { '.js': 'text/javascript', '.wasm': 'application/wasm' };

/** Starts the server; resolves to `{ base, close }` (`base` the page's origin). */
export async function serveFiles(fileOf) {
  const server = createServer((req, res) => {
    const url = decodeURIComponent(req.url.split('?')[0]);
    if (url === '/') {
      res.setHeader('content-type', 'text/html');
      return res.end('<!doctype html><script type="module">window.ready = true;</script>');
    }
    const file = fileOf(url);
    try {
      statSync(file);
    } catch {
      res.statusCode = 404;
      return res.end();
    }
    res.setHeader('content-type', TYPES[file.slice(file.lastIndexOf('.'))] || 'application/octet-stream');
    res.end(readFileSync(file));
  });
  await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
  return { base: `http://127.0.0.1:${server.address().port}`, close: () => server.close() };
}

/** Headless Chromium from /usr/bin/chromium, with `extraArgs` after `--no-sandbox`. */
export function launchChromium(extraArgs = []) {
  const require = createRequire(resolve('package.json'));
  const { chromium } = require('playwright-core');
  return chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox', ...extraArgs] });
}
