// harness.mjs — what history.mjs and loader.mjs share: the server and model they are
// pointed at (BASE_URL, MODEL_URL), headless Chromium (/usr/bin/chromium or $CHROMIUM,
// never downloaded), a blank page on the server's origin, and the ok/FAIL lines with
// the exit status they end with.
import { chromium } from 'playwright-core';

export const BASE = process.env.BASE_URL || 'http://127.0.0.1:8080/';
export const MODEL = new URL(`www/${process.env.MODEL_URL || 'models/e2e-quick.vitrine'}`, BASE).href;
/** A model file larger than the streamed load's 8 MiB rate window (scripts/e2e.sh). */
export const STREAM_MODEL = new URL(`www/${process.env.STREAM_MODEL_URL || 'models/e2e-stream.vitrine'}`, BASE).href;
export const LOAD_TIMEOUT = Number(process.env.LOAD_TIMEOUT_MS || '180000');

let failures = 0;

/** Prints one check's line; a failed one makes `finish` exit with 1. */
export function check(ok, what, detail = '') {
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}${detail ? ` — ${detail}` : ''}`);
  if (!ok) failures++;
}

/** Prints the summary and exits: 1 when a check failed. */
export function finish(name) {
  console.log(failures ? `${failures} check(s) failed` : `all ${name} checks passed`);
  process.exit(failures ? 1 : 0);
}

export function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--no-first-run'],
  });
}

/** Serves a blank page at BASE + `file` in `context` (the server has no such file) and
 * returns its URL. */
export async function blankPage(context, file, title) {
  const url = new URL(file, BASE).href;
  await context.route(url, (route) =>
    route.fulfill({ contentType: 'text/html', body: `<!doctype html><title>${title}</title>` }),
  );
  return url;
}
