// The three engines behind one interface, on the same model and the same weights
// (written by `vitrine export-onnx`, see README.md):
//   head(u)           → Float32Array of N logits (the scoring head from a user vector)
//   recommend(events) → { indices, scores } top-k, best first (history in, top-k out)
// plus `lastHeadMs` for vitrine (its own timing of the head inside recommend()).
// Each rival uses its best public API: ONNX Runtime Web runs the exported graphs (the
// whole model has a TopK node); TF.js builds the same layers from the same tensors with
// fused matMul+bias+ReLU and tf.topk. Both get the encoder input from the history the way
// vitrine computes it (catalogue index, kind index, log2 recency bucket, position).

/** Where the repository is served (this file is at bench/engines/). */
export const ROOT = new URL('../../', import.meta.url).href;
const ORT_DIST = `${ROOT}bench/engines/node_modules/onnxruntime-web/dist/`;
const TF_DIST = `${ROOT}bench/engines/node_modules/@tensorflow/`;

/** Fetches a URL's bytes (throws with the status on failure). */
export async function bytesOf(url) {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`GET ${url}: ${r.status}`);
  return new Uint8Array(await r.arrayBuffer());
}

/** Fetches and parses JSON. */
export async function jsonOf(url) {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`GET ${url}: ${r.status}`);
  return r.json();
}

/**
 * The encoder input of a history, exactly as vitrine's `Model::seq_input` builds it:
 * the last `maxLen` events; gap bucket 0 for the first event read (unless an earlier
 * event exists), else 1 + floor(log2(1 + hours)) capped at nBuckets-1 (1 when negative).
 * @param {{index:number, kind:number, at:number}[]} events oldest first
 */
export function seqInput(events, cfg) {
  const start = Math.max(0, events.length - cfg.max_len);
  const L = events.length - start;
  const items = new BigInt64Array(L), kinds = new BigInt64Array(L), gaps = new BigInt64Array(L), pos = new BigInt64Array(L);
  let prev = start > 0 ? events[start - 1].at : null;
  for (let t = 0; t < L; t++) {
    const e = events[start + t];
    let g = 0;
    if (prev !== null) {
      const hours = (e.at - prev) / 3600;
      g = !Number.isFinite(hours) || hours < 0 ? 1 : Math.min(cfg.n_recency_buckets - 1, 1 + Math.floor(Math.log2(1 + hours)));
    }
    items[t] = BigInt(e.index); kinds[t] = BigInt(e.kind); gaps[t] = BigInt(g); pos[t] = BigInt(L - 1 - t);
    prev = e.at;
  }
  return { items, kinds, gaps, pos, L };
}

/**
 * ONNX Runtime Web (wasm execution provider). `threads`: 1, or 0 for its default;
 * `head: false` skips the head-only session (a cold start needs only the whole model).
 */
export async function loadOrt(dir, ref, { threads = 1, head: withHead = true, int8 = false } = {}) {
  const ort = await import(`${ORT_DIST}ort.wasm.min.mjs`);
  ort.env.wasm.wasmPaths = ORT_DIST;
  ort.env.wasm.numThreads = threads;
  const opts = { executionProviders: ['wasm'], graphOptimizationLevel: 'all' };
  // int8: the graphs over vitrine's int8 item table (`head-int8.onnx`, `model-int8.onnx`:
  // DynamicQuantizeLinear + MatMulInteger, the pattern ORT's dynamic quantisation
  // writes and its optimizer fuses into one quantised GEMM).
  const sfx = int8 ? '-int8' : '';
  const [head, full] = await Promise.all([
    withHead ? ort.InferenceSession.create(`${dir}head${sfx}.onnx`, opts) : null,
    ort.InferenceSession.create(`${dir}model${sfx}.onnx`, opts),
  ]);
  const d = ref.dim;
  return {
    name: `onnxruntime-web${int8 ? ' int8' : ''}${threads === 1 ? '' : ' (threads)'}`,
    quantised: int8,
    version: ort.env.versions?.web ?? ort.env.versions?.common ?? '?',
    head: head && (async (u) => {
      const out = await head.run({ u: new ort.Tensor('float32', u, [d]) });
      return out.logits.data;
    }),
    async recommend(events) {
      const s = seqInput(events, ref.config);
      const t = (a) => new ort.Tensor('int64', a, [s.L]);
      const out = await full.run({ 'in.items': t(s.items), 'in.kinds': t(s.kinds), 'in.gaps': t(s.gaps), 'in.pos': t(s.pos) });
      return { indices: Array.from(out.indices.data, Number), scores: Array.from(out.scores.data) };
    },
    async close() { await head?.release(); await full.release(); },
  };
}

/** Loads a classic (UMD) script once. */
function script(src) {
  return new Promise((resolve, reject) => {
    const s = document.createElement('script');
    s.src = src; s.onload = resolve; s.onerror = () => reject(new Error(`cannot load ${src}`));
    document.head.append(s);
  });
}

/** TensorFlow.js (tfjs-core + the wasm backend), layers built from tensors.json/.bin. */
export async function loadTf(dir, ref) {
  if (!globalThis.tf) {
    await script(`${TF_DIST}tfjs-core/dist/tf-core.min.js`);
    await script(`${TF_DIST}tfjs-backend-wasm/dist/tf-backend-wasm.min.js`);
  }
  const tf = globalThis.tf;
  tf.wasm.setWasmPaths(`${TF_DIST}tfjs-backend-wasm/dist/`);
  if (!(await tf.setBackend('wasm'))) throw new Error('tf.js: the wasm backend did not initialise');
  await tf.ready();
  const [manifest, blob] = await Promise.all([jsonOf(`${dir}tensors.json`), bytesOf(`${dir}tensors.bin`)]);
  const W = {};
  for (const t of manifest.tensors) {
    const n = t.shape.reduce((a, b) => a * b, 1);
    W[t.name] = tf.tensor(new Float32Array(blob.buffer, blob.byteOffset + t.offset, n), t.shape, 'float32');
  }
  const cfg = ref.config, d = cfg.dim, H = cfg.n_heads, dh = d / H;
  const layers = cfg.mlp_hidden.slice(1).map((_, j) => [W[`head.l${j + 2}.w`], W[`head.l${j + 2}.b`]]);
  const zeros2 = tf.zeros([2]);
  // The head as in src/onnx.rs: M = [diag(u)·W1p + W1v | u | -u], a = [u·W1u + b1 | 0 0].
  const headLogits = (u) => {
    const uc = tf.reshape(u, [d, 1]);
    const m = tf.concat([tf.add(tf.mul(uc, W['head.w1p']), W['head.w1v']), uc, tf.neg(uc)], 1);
    const a = tf.concat([tf.add(tf.reshape(tf.matMul(tf.reshape(u, [1, d]), W['head.w1u']), [-1]), W['head.b1']), zeros2], 0);
    let x = tf.fused.matMul({ a: W.items, b: m, bias: a, activation: 'relu' });
    for (const [w, b] of layers) x = tf.fused.matMul({ a: x, b: w, bias: b, activation: 'relu' });
    const wo = W['head.out.w'];
    return tf.reshape(tf.add(tf.matMul(x, tf.reshape(wo, [wo.shape[0], 1])), W['head.out.b']), [-1]);
  };
  const masks = new Map();
  const mask = (L) => {
    if (!masks.has(L)) {
      const m = new Float32Array(L * L);
      for (let i = 0; i < L; i++) for (let j = i + 1; j < L; j++) m[i * L + j] = -1e9;
      masks.set(L, tf.keep(tf.tensor2d(m, [L, L])));
    }
    return masks.get(L);
  };
  const ln = (x, g, b) => {
    const { mean, variance } = tf.moments(x, -1, true);
    return tf.add(tf.mul(tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, 1e-5))), g), b);
  };
  const encode = (s) => {
    const idx = (a) => tf.tensor1d(Int32Array.from(a, Number), 'int32');
    let h = tf.addN([tf.gather(W.items, idx(s.items)), tf.gather(W['user.pos'], idx(s.pos)),
      tf.gather(W['user.kind'], idx(s.kinds)), tf.gather(W['user.gap'], idx(s.gaps))]);
    const L = s.L, mk = mask(L), scale = 1 / Math.sqrt(dh);
    for (let b = 0; b < cfg.n_blocks; b++) {
      const p = (n) => W[`user.b${b}.${n}`];
      const a = ln(h, p('ln1.g'), p('ln1.b'));
      const proj = (w, bias) => tf.transpose(tf.reshape(tf.add(tf.matMul(a, p(w)), p(bias)), [L, H, dh]), [1, 0, 2]);
      const q = proj('wq', 'bq'), k = proj('wk', 'bk'), v = proj('wv', 'bv');
      const pr = tf.softmax(tf.add(tf.mul(tf.matMul(q, k, false, true), scale), mk));
      const o = tf.reshape(tf.transpose(tf.matMul(pr, v), [1, 0, 2]), [L, d]);
      // Gated blocks (config.gated): each branch times σ(x·G + g) of the stream entering it.
      const gate = (x, n, y) => (cfg.gated ? tf.mul(tf.sigmoid(tf.add(tf.matMul(x, p(`${n}.w`)), p(`${n}.b`))), y) : y);
      const mid = tf.add(h, gate(h, 'gate_attn', tf.add(tf.matMul(o, p('wo')), p('bo'))));
      const bn = ln(mid, p('ln2.g'), p('ln2.b'));
      let f;
      if (cfg.swiglu) {
        // SwiGLU: silu(bn·W1 + b1) ⊙ (bn·W3 + b3).
        const f1 = tf.add(tf.matMul(bn, p('ffn.w1')), p('ffn.b1'));
        f = tf.mul(tf.mul(f1, tf.sigmoid(f1)), tf.add(tf.matMul(bn, p('ffn.w3')), p('ffn.b3')));
      } else f = tf.fused.matMul({ a: bn, b: p('ffn.w1'), bias: p('ffn.b1'), activation: 'relu' });
      h = tf.add(mid, gate(mid, 'gate_ffn', tf.fused.matMul({ a: f, b: p('ffn.w2'), bias: p('ffn.b2') })));
    }
    const y = ln(h, W['user.lnf.g'], W['user.lnf.b']);
    return tf.reshape(tf.slice(y, [L - 1, 0], [1, d]), [d]);
  };
  return {
    name: 'tfjs (wasm)',
    version: tf.version_core ?? tf.version?.['tfjs-core'] ?? '?',
    backend: tf.getBackend(),
    async head(u) {
      const z = tf.tidy(() => headLogits(tf.tensor1d(u)));
      const out = await z.data();
      z.dispose();
      return out;
    },
    async recommend(events) {
      const s = seqInput(events, cfg);
      const { values, indices } = tf.tidy(() => tf.topk(headLogits(encode(s)), ref.k, true));
      const [sc, ix] = await Promise.all([values.data(), indices.data()]);
      values.dispose(); indices.dispose();
      return { indices: Array.from(ix), scores: Array.from(sc) };
    },
    async close() { for (const t of Object.values(W)) t.dispose(); for (const m of masks.values()) m.dispose(); },
  };
}

/** vitrine's wasm package (`plain` or `relaxed` build), main thread, SIMD backend. */
export async function loadVitrine(modelUrl, ref, { build = 'relaxed' } = {}) {
  const pkg = build === 'relaxed' ? `${ROOT}pkg/relaxed/vitrine.js` : `${ROOT}pkg/vitrine.js`;
  const mod = await import(pkg);
  const wasm = await mod.default();
  const bytes = await bytesOf(modelUrl);
  const rec = await mod.Recommender.fromBytes(bytes, { backend: 'simd', storage: 'memory', namespace: `engines-${build}` });
  const ids = rec.catalog().ids;
  const kindName = Object.fromEntries(Object.entries(ref.kinds).map(([n, i]) => [i, n]));
  let last = null;
  return {
    name: `vitrine (${build})`,
    version: mod.buildInfo().version,
    build: mod.buildInfo(),
    mod, wasm,
    lastHeadMs: null,
    dotForm: null,
    sigmoidScores: true,
    ids,
    /** vitrine has no "score from a user vector" call: the head's time comes from
     * stats().scoreMs of a recommend() on the reference history (see README). */
    async recommend(events, k = ref.k) {
      if (events !== last) {
        rec.clearHistory();
        for (const e of events) rec.record({ item: ids[e.index], type: kindName[e.kind], at: e.at });
        last = events;
      }
      const res = await rec.recommend({ k, excludeSeen: false });
      const stats = rec.stats();
      this.lastHeadMs = stats.scoreMs;
      // The int8 multiply form its first requests chose (null: none to choose, or not yet).
      this.dotForm = stats.dotForm ?? null;
      return { indices: res.map((r) => r.index), scores: res.map((r) => r.score) };
    },
    wasmBytes() { return wasm.memory.buffer.byteLength; },
    async close() { rec.free(); },
  };
}

/** Worst |a-b| / max(1, |b|) over the pairs. */
export function maxRelErr(a, b) {
  let worst = 0;
  for (let i = 0; i < b.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]) / Math.max(1, Math.abs(b[i])));
  return worst;
}

/** The reference history with absolute times (the reference stores offsets from "now"). */
export function refEvents(ref, now = Math.floor(Date.now() / 1000)) {
  return ref.history.map((e) => ({ index: e.index, id: e.id, kind: ref.kinds[e.kind], at: now + e.atOffset }));
}

/**
 * Checks an engine against vitrine's reference (logits of the first items, the top-k of
 * the whole model); returns { headErr, topErr, topSame } (errors relative, see maxRelErr).
 * vitrine's recommend() returns sigmoid scores: compared as sigmoid(reference logit).
 */
export async function agreement(engine, ref, events) {
  const out = {};
  if (engine.head) {
    const logits = await engine.head(Float32Array.from(ref.u));
    if (logits.length !== ref.nItems) throw new Error(`${engine.name}: head gave ${logits.length} logits, expected ${ref.nItems}`);
    out.headErr = maxRelErr(logits.subarray(0, ref.logits.length), ref.logits);
  }
  const top = await engine.recommend(events);
  const want = ref.top.map((t) => t.index);
  out.topSame = top.indices.length === want.length && top.indices.every((i, j) => i === want[j]);
  out.topOverlap = top.indices.filter((i) => want.includes(i)).length / want.length;
  const sig = (x) => 1 / (1 + Math.exp(-x));
  const expect = engine.sigmoidScores ? ref.top.map((t) => sig(t.logit)) : ref.top.map((t) => t.logit);
  out.topErr = maxRelErr(top.scores, expect);
  // The score error over the items both top-k lists hold (each compared with its own
  // reference score): what an int8 engine's agreement is judged by.
  const at = new Map(want.map((i, j) => [i, expect[j]]));
  const shared = top.indices.map((i, j) => [top.scores[j], at.get(i)]).filter(([, x]) => x !== undefined);
  out.topSharedErr = maxRelErr(shared.map(([y]) => y), shared.map(([, x]) => x));
  return out;
}
