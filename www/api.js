// api.js — the one list of the wasm `Recommender` methods a page may call through
// vitrine.js, shared by the main-thread wrapper (vitrine.js) and the Web Worker
// (worker.js). Plain ES module, no build step.
//
// Each entry: `name` (the wasm method and the `Vitrine` method), `arg` (whether it takes
// one argument), `spread` (the argument is an array of the wasm method's arguments:
// `search(query, options)` travels as `[query, options]`), `write` (whether it changes the
// stored history: it runs under the storage key's Web Lock, and worker mode writes the new
// value back to localStorage, merged with another tab's if one wrote meanwhile), `clears`
// (afterwards every `vitrine:` key of localStorage is removed, in any case). Every call is awaited, so a method
// that is async in Rust (`recommend`, `page`) and a plain one look the same to the page.

/**
 * @typedef {{ name: string, arg: boolean, spread?: boolean, write: boolean, clears: boolean }} MethodSpec
 */

/** @type {readonly MethodSpec[]} */
export const METHODS = Object.freeze([
  { name: 'record', arg: true, write: true, clears: false },
  { name: 'recommend', arg: true, write: false, clears: false },
  { name: 'page', arg: true, write: false, clears: false },
  { name: 'search', arg: true, spread: true, write: false, clears: false },
  { name: 'prepareSearch', arg: false, write: false, clears: false },
  { name: 'history', arg: false, write: false, clears: false },
  { name: 'clearHistory', arg: false, write: true, clears: true },
  { name: 'exportHistory', arg: false, write: false, clears: false },
  { name: 'importHistory', arg: true, write: true, clears: false },
  { name: 'historyInfo', arg: false, write: false, clears: false },
  { name: 'stats', arg: false, write: false, clears: false },
].map((m) => Object.freeze(m)));

/** The same entries by name. @type {ReadonlyMap<string, MethodSpec>} */
export const METHOD_BY_NAME = new Map(METHODS.map((m) => [m.name, m]));

/**
 * The entry for `name`, or an Error naming the unknown method.
 * @param {string} name
 * @param {string} who the caller, for the message
 * @returns {MethodSpec}
 */
export function method(name, who) {
  const m = METHOD_BY_NAME.get(name);
  if (!m) throw new Error(`${who}: unknown method ${name}`);
  return m;
}

/**
 * Calls API method `m` on the wasm Recommender `rec` with the page's argument `arg`
 * (none, one, or spread from an array): the one dispatch of the main thread and the worker.
 * @param {any} rec
 * @param {MethodSpec} m
 * @param {any} arg
 */
export async function invoke(rec, m, arg) {
  if (m.spread) return await rec[m.name](...(Array.isArray(arg) ? arg : [arg]));
  return m.arg ? await rec[m.name](arg) : await rec[m.name]();
}
