// Browser side of the search bench (page.html): run.mjs loads this page in headless
// Chromium, waits for body[data-state=ready], then calls
//   window.runBench({ catalog, queries, kinds, configs, versions, rounds, warmup, model })
// which builds every engine in this page (heap measured with window.gc and
// performance.memory when Chromium was started with --js-flags=--expose-gc and
// --enable-precise-memory-info), measures quality and the interleaved latency (core.mjs)
// and resolves { results, userAgent, crossOriginIsolated, timerResolutionMs }.
import { KINDS, vitrineSettings } from './engines.mjs';
import { measure, timerResolution } from './core.mjs';

const status = document.querySelector('[data-testid="bench-status"]');
const memory =
  typeof window.gc === 'function' && performance.memory ? { gc: () => window.gc(), used: () => performance.memory.usedJSHeapSize } : null;

window.runBench = async ({ catalog, queries, kinds, configs, versions, rounds, warmup, model }) => {
  status.textContent = 'running…';
  if (model) vitrineSettings.model = model;
  const engines = kinds.map((k) => {
    if (!KINDS[k]) throw new Error(`unknown engine ${k}`);
    return KINDS[k].make(configs[k], versions[k]);
  });
  const results = await measure(engines, catalog, queries, { rounds, warmup, memory });
  status.textContent = 'done';
  return { results, userAgent: navigator.userAgent, crossOriginIsolated: window.crossOriginIsolated, timerResolutionMs: timerResolution() };
};

document.body.dataset.state = 'ready';
status.textContent = 'ready';
