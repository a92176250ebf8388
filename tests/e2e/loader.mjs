// loader.mjs — www/vitrine.js's loading path in headless Chromium: fetchBytes over
// bodies whose announced length is right, missing, shorter than the body (a compressed
// transfer announces its compressed length) or longer (the body ended early), with the
// progress it reports; and load() in both modes, which starts the package (and the
// worker) before the download: a model loads and answers, its catalogue (made from the
// packed typed arrays) is the package's catalog(), and a failed download rejects with
// its error and leaves no worker behind; Recommender.fromStream and loadStream (the load
// while the file arrives) give what fromBytes gives, over bodies as announced or not; and
// over a file larger than the 8 MiB window on which the download rate is measured
// (STREAM_MODEL), its checksum (`data_crc32`) is taken as the bytes arrive at any rate
// without WebCrypto, or, with the field stripped (a file from before it), the content
// hash as the bytes arrive on a slow download and after the last byte (WebCrypto) on a
// fast one, and a flipped byte fails each way;
// and which build load() fetches: the GPU path only where the page may use WebGPU, the
// lean builds (pkg/lean*) otherwise, ranking exactly as the full build's SIMD path; its
// wasm requested once, while its glue is imported.
//
// Usage: BASE_URL=http://127.0.0.1:PORT/ MODEL_URL=models/x.vitrine node tests/e2e/loader.mjs
// (scripts/e2e.sh runs it against its local server).
import { MODEL, STREAM_MODEL, LOAD_TIMEOUT, blankPage, check, finish, launchBrowser } from './harness.mjs';

const browser = await launchBrowser();
try {
  const context = await browser.newContext();
  // A blank page on the server's origin.
  const BLANK = await blankPage(context, 'e2e-loader-blank.html', 'vitrine loader test');
  const page = await context.newPage();
  page.on('pageerror', (e) => check(false, 'no page error', e.message));
  page.setDefaultTimeout(LOAD_TIMEOUT);
  await page.goto(BLANK);

  // fetchBytes against a fetch that answers a stream of known chunks with a chosen
  // content-length (the Response constructor lets a page set it).
  const cases = await page.evaluate(async () => {
    const { fetchBytes } = await import('/www/vitrine.js');
    const realFetch = window.fetch;
    const body = Uint8Array.from({ length: 10_000 }, (_, i) => (i * 7 + 3) % 251);
    const sizes = [1, 999, 4096, 0, 3000, 1904]; // sums to 10,000 (an empty chunk too)
    const out = {};
    for (const [name, length] of [
      ['exact', String(body.length)],
      ['missing', null],
      ['shorter than the body', '4000'],
      ['longer than the body', '25000'],
      ['zero', '0'],
      ['not a number', 'many'],
    ]) {
      window.fetch = async () => {
        let at = 0;
        let k = 0;
        const stream = new ReadableStream({
          pull(c) {
            if (k === sizes.length) return c.close();
            const n = sizes[k++];
            c.enqueue(body.slice(at, at + n));
            at += n;
          },
        });
        const headers = length === null ? {} : { 'content-length': length };
        return new Response(stream, { headers });
      };
      const progress = [];
      try {
        const got = await fetchBytes('/any', (loaded, total) => progress.push([loaded, total]));
        const same = got.length === body.length && got.every((b, i) => b === body[i]);
        const last = progress[progress.length - 1];
        out[name] = { same, length: got.length, bufferLength: got.buffer.byteLength, last, calls: progress.length };
      } catch (e) {
        out[name] = { error: e.message };
      } finally {
        window.fetch = realFetch;
      }
    }
    return out;
  });
  for (const [name, r] of Object.entries(cases)) {
    check(
      r.same === true && r.bufferLength === r.length && r.last?.[0] === 10_000,
      `fetchBytes: content-length ${name}: every byte once, a buffer of exactly the body, progress to the end`,
      JSON.stringify(r),
    );
  }

  // A stand-in for fetch() in the page: `stubDownload(body, length, { failAt, chunk,
  // encoding })` answers every request with `body` in chunks of `chunk` bytes, one per
  // task, announced as `length` bytes (no content-length when null), with that
  // content-encoding header when given, failing at `failAt` when given; `restoreFetch()`
  // undoes it.
  // `answerOf(loading)`: what a loading model answers (its content hash and five
  // recommendations, the model freed after), or its error's message.
  await page.evaluate(() => {
    window.answerOf = async (loading) => {
      try {
        const rec = await loading;
        const recs = await rec.recommend({ k: 5 });
        const out = { hash: rec.modelInfo().contentHash, recs: JSON.stringify(recs) };
        rec.free();
        return out;
      } catch (e) {
        return { error: e?.message ?? String(e) };
      }
    };
    const realFetch = window.fetch;
    window.stubDownload = (body, length, { failAt = null, chunk = 65_536, encoding = null } = {}) => {
      window.fetch = async () => {
        let at = 0;
        const stream = new ReadableStream({
          async pull(c) {
            if (failAt !== null && at >= failAt) return c.error(new Error('network gone'));
            if (at >= body.length) return c.close();
            const n = Math.min(chunk, body.length - at);
            await new Promise((r) => setTimeout(r, 0));
            c.enqueue(body.slice(at, at + n));
            at += n;
          },
        });
        const headers = {};
        if (length !== null) headers['content-length'] = String(length);
        if (encoding !== null) headers['content-encoding'] = encoding;
        return new Response(stream, { headers });
      };
    };
    window.restoreFetch = () => {
      window.fetch = realFetch;
    };
  });

  // Recommender.fromStream: the same engine or the same error as fromBytes, reading only
  // the bytes that have arrived; loadStream (what load() runs) over bodies as announced,
  // longer, shorter, corrupt, or failing midway.
  const streamed = await page.evaluate(
    async ({ model }) => {
      const { importPackage, packageUrls, streamBytes, loadStream } = await import('/www/vitrine.js');
      const mod = await importPackage(packageUrls());
      const file = new Uint8Array(await (await fetch(model)).arrayBuffer());
      const opts = (ns) => ({ backend: 'simd', storage: 'memory', namespace: `e2e-stream-${ns}` });
      const answer = window.answerOf;
      const out = {};
      // 1. The array filled only as the load asks: garbage past what has "arrived".
      {
        const bytes = new Uint8Array(file.length).fill(0xee);
        const asked = [];
        let have = 0;
        const arrived = async (end) => {
          asked.push(end);
          await new Promise((r) => setTimeout(r, 0));
          if (end > have) {
            bytes.set(file.subarray(have, end), have);
            have = end;
          }
        };
        out.paced = await answer(mod.Recommender.fromStream(bytes, arrived, opts('paced')));
        out.asked = asked;
        out.length = file.length;
      }
      out.whole = await answer(mod.Recommender.fromBytes(file, opts('whole')));

      // 2. loadStream over a stubbed download.
      const serve = (body, length, { failAt = null } = {}) => stubDownload(body, length, { failAt, chunk: 65_536 + 17 });
      const flipped = file.slice();
      flipped[file.length - 3] ^= 0x40;
      const cases = {
        exact: [file, file.length],
        'announced shorter (compressed)': [file, Math.floor(file.length / 3)],
        'announced longer (ended early)': [file.subarray(0, file.length - 1000), file.length],
        'a flipped byte': [flipped, file.length],
      };
      try {
        for (const [name, [body, length]] of Object.entries(cases)) {
          serve(body, length);
          const stream = await streamBytes('/any');
          out[name] = {
            streamed: await answer(loadStream(mod, stream, opts(name))),
            whole: await answer(mod.Recommender.fromBytes(body.slice(), opts(`${name}-whole`))),
          };
        }
        // Without a usable length (a compressed transfer announces its encoded length;
        // none announced): the buffer sized from the file's header, the load streamed.
        const realFromStream = mod.Recommender.fromStream;
        let fromStreamCalls = 0;
        mod.Recommender.fromStream = (...a) => {
          fromStreamCalls += 1;
          return realFromStream.apply(mod.Recommender, a);
        };
        try {
          for (const [name, length, encoding] of [
            ['compressed transfer', Math.floor(file.length / 3), 'gzip'],
            ['compressed transfer, its encoding not visible', Math.floor(file.length / 3), null],
            ['no content-length', null, null],
          ]) {
            stubDownload(file, length, { chunk: 4099, encoding });
            fromStreamCalls = 0;
            const progress = [];
            const stream = await streamBytes('/any', (got, of) => progress.push([got, of]));
            await stream.sized;
            const sizedLength = stream.bytes?.length ?? null;
            out[name] = {
              sizedLength,
              streamed: await answer(loadStream(mod, stream, opts(name))),
              fromStreamCalls,
              // Progress: no total before the header is in, the file's length after.
              firstTotal: progress[0][1],
              last: progress[progress.length - 1],
            };
          }
          // Bytes after the data section, announced: the announced buffer is kept (the
          // header's shorter length is not taken), and the load gives what fromBytes does.
          const padded = new Uint8Array(file.length + 100);
          padded.set(file);
          stubDownload(padded, padded.length, { chunk: 4099 });
          const stream = await streamBytes('/any');
          await stream.sized;
          out.padded = {
            kept: stream.bytes?.length === padded.length,
            streamed: await answer(loadStream(mod, stream, opts('padded'))),
            whole: await answer(mod.Recommender.fromBytes(padded.slice(), opts('padded-whole'))),
          };
        } finally {
          mod.Recommender.fromStream = realFromStream;
        }
        const { weightFileLength, headerSizer } = await import('/www/vitrine.js');
        // The sizer over chunks cut inside the 8-byte length and inside the header.
        const sizerOver = (body, cuts) => {
          const z = headerSizer();
          const seen = [];
          let at = 0;
          for (const c of [...cuts, body.length]) {
            seen.push(z.add(body.subarray(at, c)));
            at = c;
          }
          return seen.map((v) => (v === undefined ? 'undefined' : v));
        };
        out.sizer = {
          file: sizerOver(file, [3, 11, 200]),
          // A header longer than the sizer reads: no length.
          capped: (() => {
            const z = headerSizer(16);
            return [z.add(file.subarray(0, 100)), z.add(file.subarray(100))];
          })(),
          garbage: sizerOver(Uint8Array.from({ length: 64 }, (_, i) => (i * 37 + 11) % 256), [5]),
        };
        out.lengths = [
          weightFileLength(file),
          weightFileLength(file.subarray(0, 8)),
          weightFileLength(file.subarray(0, 7)),
          weightFileLength(Uint8Array.from({ length: 64 }, (_, i) => (i * 37 + 11) % 256)),
        ].map((v) => (v === undefined ? 'undefined' : v));
        serve(file, file.length, { failAt: Math.floor(file.length / 2) });
        out.failing = await answer(loadStream(mod, await streamBytes('/any'), opts('failing')));
        serve(file, file.length);
        const integrity = 'sha256-' + '0'.repeat(64);
        out.integrity = {
          streamed: await answer(loadStream(mod, await streamBytes('/any'), { ...opts('i'), integrity })),
          whole: await answer(mod.Recommender.fromBytes(file, { ...opts('iw'), integrity })),
        };
      } finally {
        restoreFetch();
      }
      return out;
    },
    { model: MODEL },
  );
  {
    const { paced, whole, asked, length } = streamed;
    const distinct = new Set(asked).size;
    check(
      typeof whole.hash === 'string' && paced.hash === whole.hash && paced.recs === whole.recs,
      'fromStream: the engine fromBytes builds, though the array holds garbage past what has arrived',
      JSON.stringify({ paced, whole }),
    );
    check(
      asked.every((e, i) => i === 0 || e >= asked[i - 1]) && asked[asked.length - 1] === length && distinct > 5 && asked[2] < length / 2,
      'fromStream: asks for the bytes in order, opening the file before half of it is in, then a tensor at a time',
      JSON.stringify(asked),
    );
    for (const name of ['exact', 'announced shorter (compressed)', 'announced longer (ended early)', 'a flipped byte', 'integrity']) {
      const r = streamed[name];
      check(JSON.stringify(r.streamed) === JSON.stringify(r.whole), `loadStream: ${name}: what fromBytes gives for the body`, JSON.stringify(r));
    }
    for (const name of ['exact', 'announced shorter (compressed)']) {
      const r = streamed[name].streamed;
      check(typeof r.hash === 'string' && r.hash === whole.hash && r.recs === whole.recs, `loadStream: ${name}: loads`, JSON.stringify(r));
    }
    for (const name of ['compressed transfer', 'compressed transfer, its encoding not visible', 'no content-length']) {
      const r = streamed[name];
      check(
        r.sizedLength === length && r.fromStreamCalls === 1 && r.streamed.hash === whole.hash && r.streamed.recs === whole.recs,
        `loadStream: ${name}: a buffer of the header's length, loaded as it arrives (fromStream), the same engine`,
        JSON.stringify({ ...r, length }),
      );
      // Unseen, the encoded length is the total until the header is in.
      const firstTotal = name === 'compressed transfer, its encoding not visible' ? Math.floor(length / 3) : null;
      check(
        r.firstTotal === firstTotal && r.last[0] === length && r.last[1] === length,
        `streamBytes: ${name}: progress against ${firstTotal === null ? 'no total' : 'the announced length'} until the header is in, then against the file's length`,
        JSON.stringify({ firstTotal: r.firstTotal, last: r.last, length }),
      );
    }
    check(
      JSON.stringify(streamed.sizer) === JSON.stringify({ file: ['undefined', 'undefined', 'undefined', length], capped: [null, null], garbage: ['undefined', null] }),
      "headerSizer: undefined until the header is in (chunks cut inside the length and the header), then the file's length; null for a header over its limit and for bytes that are not a weight file",
      JSON.stringify(streamed.sizer),
    );
    check(
      streamed.padded.kept && JSON.stringify(streamed.padded.streamed) === JSON.stringify(streamed.padded.whole),
      "loadStream: bytes after the data section, announced: the announced buffer kept, the result fromBytes gives",
      JSON.stringify(streamed.padded),
    );
    check(
      JSON.stringify(streamed.lengths) === JSON.stringify([length, 'undefined', 'undefined', null]),
      "weightFileLength: the file's length from its header; undefined before the header is in; null for bytes that are not a weight file",
      JSON.stringify(streamed.lengths),
    );
    check(/checksum mismatch/.test(streamed['a flipped byte'].whole.error ?? ''), 'loadStream: a flipped byte is a checksum error', JSON.stringify(streamed['a flipped byte']));
    check(/network gone/.test(streamed.failing.error ?? ''), 'loadStream: a download failing midway rejects with its error', JSON.stringify(streamed.failing));
  }

  // Over a file larger than the rate's window, as `vitrine` writes it (with `data_crc32`)
  // and as written before that field (stripped here: its SHA-256 is checked instead):
  // paced at 20 MB/s, with every byte in from the start, and with WebCrypto rejecting;
  // the same engine as fromBytes each way, and a flipped byte near the end a checksum
  // (or content-hash) error each way. With `data_crc32` the checksum is taken in wasm as
  // the bytes arrive, whatever the rate (the load asks for them at most a 4 MiB step
  // apart), and WebCrypto is never called. Without it: at 20 MB/s (under the 100 MB/s
  // threshold) hashed in wasm as the bytes arrive (at most a 4 MiB hash step apart once
  // the window is past, no WebCrypto call); with every byte in, left to WebCrypto after
  // the last byte (one digest of the data section); with WebCrypto rejecting, hashed in
  // wasm instead. `crypto.subtle.digest` is wrapped to count its calls (the load looks
  // it up per call).
  for (const legacy of [false, true]) {
    const big = await page.evaluate(
      async ({ model, legacy }) => {
        const { importPackage, packageUrls } = await import('/www/vitrine.js');
        const mod = await importPackage(packageUrls());
        let file = new Uint8Array(await (await fetch(model)).arrayBuffer());
        const headerOf = (f) => Number(new DataView(f.buffer).getBigUint64(0, true));
        const n = headerOf(file);
        const header = JSON.parse(new TextDecoder().decode(file.subarray(8, 8 + n)));
        const meta = JSON.parse(header.__metadata__.vitrine);
        const hadCrc = typeof meta.data_crc32 === 'string';
        if (legacy && hadCrc) {
          delete meta.data_crc32;
          header.__metadata__.vitrine = JSON.stringify(meta);
          const text = new TextEncoder().encode(JSON.stringify(header));
          const out = new Uint8Array(8 + text.length + file.length - 8 - n);
          new DataView(out.buffer).setBigUint64(0, BigInt(text.length), true);
          out.set(text, 8);
          out.set(file.subarray(8 + n), 8 + text.length);
          file = out;
        }
        const dataLength = file.length - 8 - headerOf(file);
        const opts = (ns) => ({ backend: 'simd', storage: 'memory', namespace: `e2e-big-${ns}` });
        const answer = window.answerOf;
        const whole = await answer(mod.Recommender.fromBytes(file, opts('whole')));
        const subtle = crypto.subtle;
        const realDigest = subtle.digest;
        let digests = [];
        let refuse = false;
        subtle.digest = function (algorithm, data) {
          digests.push(data.byteLength);
          return refuse ? Promise.reject(new Error('no WebCrypto here')) : realDigest.call(this, algorithm, data);
        };
        // One streamed load: `arrived` paced at 20 MB/s, or every byte in at once.
        const stream = async (body, ns, slow) => {
          digests = [];
          const bytes = slow ? new Uint8Array(body.length) : body.slice();
          const asked = [];
          let have = 0;
          const arrived = async (end) => {
            asked.push(end);
            if (!slow) return body.length;
            if (end > have) {
              await new Promise((r) => setTimeout(r, (end - have) / 20_000));
              bytes.set(body.subarray(have, end), have);
              have = end;
            }
          };
          const r = await answer(mod.Recommender.fromStream(bytes, arrived, opts(ns)));
          return { ...r, asked, digests };
        };
        const flipped = file.slice();
        flipped[file.length - 5] ^= 0x10;
        try {
          const out = { length: file.length, dataLength, whole, hadCrc };
          out.slow = await stream(file, 'slow', true);
          out.fast = await stream(file, 'fast', false);
          out.slowFlipped = await stream(flipped, 'slow-flipped', true);
          out.fastFlipped = await stream(flipped, 'fast-flipped', false);
          refuse = true;
          out.refused = await stream(file, 'refused', false);
          out.refusedFlipped = await stream(flipped, 'refused-flipped', false);
          return out;
        } finally {
          delete subtle.digest;
        }
      },
      { model: STREAM_MODEL, legacy },
    );
    const MiB = 1 << 20;
    const { length, dataLength, whole, slow, fast, refused, hadCrc } = big;
    const kind = legacy ? 'without data_crc32' : 'with data_crc32';
    check(hadCrc, `the streamed test file (${STREAM_MODEL}) has a data_crc32: written by today's vitrine`, JSON.stringify({ hadCrc }));
    const same = (r) => typeof whole.hash === 'string' && r.hash === whole.hash && r.recs === whole.recs;
    const brief = (r) => ({ hash: r.hash ?? r.error, digests: r.digests });
    check(length > 12 * MiB && same(slow) && same(fast) && same(refused), `fromStream over a file past the rate window, ${kind}: the engine fromBytes builds, paced, all in, or with WebCrypto refusing`, JSON.stringify({ length, whole: whole.hash ?? whole.error, slow: brief(slow), fast: brief(fast), refused: brief(refused) }));
    if (legacy) {
      const past = slow.asked.filter((e) => e > 8 * MiB);
      const steps = past.slice(1).map((e, i) => e - past[i]);
      check(past.length > 2 && steps.every((d) => d <= 4 * MiB) && past[past.length - 1] === length && slow.digests.length === 0, `fromStream at 20 MB/s, ${kind}: hashed in wasm as the bytes arrive (asks at most 4 MiB apart past the window, no WebCrypto call)`, JSON.stringify({ asked: slow.asked, digests: slow.digests }));
      check(JSON.stringify(fast.digests) === JSON.stringify([dataLength]), `fromStream with every byte in, ${kind}: left to WebCrypto (one digest, of the data section)`, JSON.stringify({ dataLength, digests: fast.digests }));
      check(JSON.stringify(refused.digests) === JSON.stringify([dataLength]), `fromStream with WebCrypto refusing, ${kind}: asked once, then hashed in wasm`, JSON.stringify({ dataLength, digests: refused.digests }));
    } else {
      const past = slow.asked.filter((e) => e > length - dataLength);
      const steps = past.slice(1).map((e, i) => e - past[i]);
      check(past.length > 3 && steps.every((d) => d <= 4 * MiB) && past[past.length - 1] === length, `fromStream at 20 MB/s, ${kind}: the checksum taken as the bytes arrive (asks at most 4 MiB apart through the data section)`, JSON.stringify({ asked: slow.asked }));
      check([slow, fast, refused, big.slowFlipped, big.fastFlipped].every((r) => r.digests.length === 0), `fromStream, ${kind}: WebCrypto never called`, JSON.stringify([slow, fast, refused].map((r) => r.digests)));
    }
    const error = legacy ? /content hash mismatch/ : /checksum mismatch/;
    for (const [name, r] of [['at 20 MB/s', big.slowFlipped], ['with every byte in', big.fastFlipped], ['with WebCrypto refusing', big.refusedFlipped]]) {
      check(error.test(r.error ?? ''), `fromStream ${name}, ${kind}: a flipped byte is a ${legacy ? 'content-hash' : 'checksum'} error`, JSON.stringify(r.error ?? r.hash));
    }
  }

  for (const worker of [true, false]) {
    const mode = worker ? 'worker' : 'main thread';
    const loaded = await page.evaluate(
      async ({ model, worker }) => {
        const { load } = await import('/www/vitrine.js');
        const progress = [];
        const v = await load(model, {
          worker,
          backend: 'simd',
          namespace: `e2e-loader-${worker}`,
          onProgress: (l, t) => progress.push([l, t]),
        });
        const recs = await v.recommend({ k: 5 });
        const n = v.nItems;
        // The catalogue load() made (from catalogPacked(), transferred from the worker in
        // worker mode) against the raw package's catalog() on the same file.
        const { importPackage, packageUrls } = await import('/www/vitrine.js');
        const mod = await importPackage(packageUrls());
        const bytes = new Uint8Array(await (await fetch(model)).arrayBuffer());
        const raw = await mod.Recommender.fromBytes(bytes, { backend: 'simd', storage: 'memory', namespace: 'e2e-loader-raw' });
        const sameCatalog = JSON.stringify(v.catalog) === JSON.stringify(raw.catalog());
        raw.free();
        v.dispose();
        const last = progress[progress.length - 1];
        return { n, items: v.catalog.ids.length, sameCatalog, recs: recs.length, done: last[0] === last[1] && last[0] > 0 };
      },
      { model: MODEL, worker },
    );
    check(loaded.n > 0 && loaded.recs === 5 && loaded.done, `load() (${mode}): the model loads and recommends; progress reaches the file's length`, JSON.stringify(loaded));

    // Over downloads that are not as announced (the page's fetch, which both modes use).
    const odd = await page.evaluate(
      async ({ model, worker }) => {
        const { load } = await import('/www/vitrine.js');
        const file = new Uint8Array(await (await fetch(model)).arrayBuffer());
        const serve = (length, failAt = null, encoding = null) => stubDownload(file, length, { failAt, chunk: 50_000, encoding });
        const out = { length: file.length };
        try {
          serve(Math.floor(file.length / 3));
          const unseen = [];
          const v = await load('/any', { worker, backend: 'simd', namespace: `e2e-odd-${worker}`, onProgress: (l, t) => unseen.push([l, t]) });
          out.compressed = {
            n: v.nItems,
            hash: v.modelInfo.contentHash,
            recs: (await v.recommend({ k: 3 })).length,
            firstTotal: unseen[0][1],
            last: unseen[unseen.length - 1],
          };
          v.dispose();
          // The same with the encoding said (Content-Encoding): sized from the header.
          serve(Math.floor(file.length / 3), null, 'gzip');
          const progress = [];
          const e = await load('/any', { worker, backend: 'simd', namespace: `e2e-odd3-${worker}`, onProgress: (l, t) => progress.push([l, t]) });
          out.encoded = {
            n: e.nItems,
            recs: (await e.recommend({ k: 3 })).length,
            firstTotal: progress[0][1],
            last: progress[progress.length - 1],
          };
          e.dispose();
          serve(file.length, Math.floor(file.length / 2));
          try {
            await load('/any', { worker, backend: 'simd', namespace: `e2e-odd2-${worker}` });
            out.failing = 'loaded';
          } catch (e) {
            out.failing = e.message;
          }
        } finally {
          restoreFetch();
        }
        return out;
      },
      { model: MODEL, worker },
    );
    check(
      odd.compressed?.n === loaded.n && odd.compressed.recs === 3 && odd.compressed.firstTotal === Math.floor(odd.length / 3) && odd.compressed.last[0] === odd.length && odd.compressed.last[1] === odd.length,
      `load() (${mode}): a body longer than announced (a compressed transfer whose encoding the page cannot see) loads, its progress against the announced length, then the header's`,
      JSON.stringify(odd),
    );
    check(
      odd.encoded?.n === loaded.n && odd.encoded.recs === 3 && odd.encoded.firstTotal === null && odd.encoded.last[0] === odd.length && odd.encoded.last[1] === odd.length,
      `load() (${mode}): a compressed transfer (Content-Encoding) loads, its progress against the file's length from its header`,
      JSON.stringify(odd),
    );
    check(/network gone/.test(odd.failing), `load() (${mode}): a download failing midway rejects with its error`, JSON.stringify(odd));
    check(loaded.sameCatalog === true && loaded.items === loaded.n, `load() (${mode}): its catalogue is the package's catalog(), every column`, JSON.stringify(loaded));

    // Workers leave page.workers() when they close (give that a moment).
    const settle = async () => {
      for (let i = 0; i < 50 && page.workers().length > 0; i++) await page.waitForTimeout(100);
      return page.workers().length;
    };
    const before = await settle();
    const failed = await page.evaluate(
      async ({ worker }) => {
        const { load } = await import('/www/vitrine.js');
        try {
          await load('/www/models/no-such-model.vitrine', { worker });
          return 'loaded';
        } catch (e) {
          return e.message;
        }
      },
      { worker },
    );
    check(/cannot download .*no-such-model\.vitrine: HTTP 404/.test(failed), `load() (${mode}): a failed download rejects with its error`, failed);
    const left = await settle();
    check(before === 0 && left === 0, `load() (${mode}): no worker left behind (after dispose(), and by the failed load)`, `${before} before, ${left} after`);
  }

  // Which build load() fetches: the one with the GPU path only where the page may score
  // on WebGPU (`navigator.gpu`, a backend other than 'simd'/'scalar'), else the lean one
  // (pkg/lean*, no wgpu), which must rank exactly as the full build's SIMD path does.
  const builds = await page.evaluate(async (model) => {
    const { load, packageUrls, hasRelaxedSimd } = await import('/www/vitrine.js');
    const out = { hasGpu: Boolean(navigator.gpu), relaxed: hasRelaxedSimd() };
    const tail = (u) => new URL(u).pathname;
    out.urls = {
      full: packageUrls('plain').map(tail),
      lean: packageUrls('plain', undefined, false).map(tail),
      leanRelaxed: packageUrls('relaxed', undefined, false).map(tail),
    };
    const run = async (opts) => {
      const v = await load(model, { namespace: 'e2e-builds', ...opts });
      // A history, so that the scoring head ranks (not the empty history's fallback).
      await v.clearHistory();
      const ids = v.catalog.ids;
      for (const i of [3, 40, 41, 500]) await v.record({ item: ids[i], type: i === 41 ? 'cart' : 'view' });
      const recs = await v.recommend({ k: 8 });
      const build = v.build;
      v.dispose();
      return { build, recs: recs.map((r) => [r.item, r.score]) };
    };
    out.auto = await run({ worker: false });
    out.simd = await run({ worker: true, backend: 'simd' });
    out.scalarPlain = await run({ worker: false, backend: 'scalar', simd: 'plain' });
    out.fullSimd = await run({ worker: false, backend: 'simd', pkgUrl: '/pkg/relaxed/vitrine.js' });
    return out;
  }, MODEL);
  check(builds.hasGpu && builds.relaxed, 'the test browser has navigator.gpu and relaxed SIMD (the cases below need both)', JSON.stringify(builds));
  check(
    JSON.stringify(builds.urls) === JSON.stringify({
      full: ['/pkg/vitrine.js'],
      lean: ['/pkg/lean/vitrine.js', '/pkg/vitrine.js'],
      leanRelaxed: ['/pkg/lean-relaxed/vitrine.js', '/pkg/lean/vitrine.js', '/pkg/relaxed/vitrine.js', '/pkg/vitrine.js'],
    }),
    'packageUrls: the lean builds first when no GPU path is wanted, the full ones after them',
    JSON.stringify(builds.urls),
  );
  check(builds.auto.build.gpu === true && builds.auto.build.simd === 'relaxed-simd', "load(): the default backend with navigator.gpu gets the relaxed build with the GPU path", JSON.stringify(builds.auto.build));
  check(builds.simd.build.gpu === false && builds.simd.build.simd === 'relaxed-simd', "load() (worker): backend 'simd' gets the relaxed build without the GPU path", JSON.stringify(builds.simd.build));
  check(builds.scalarPlain.build.gpu === false && builds.scalarPlain.build.simd === 'simd128', "load(): backend 'scalar' with simd 'plain' gets pkg/lean/", JSON.stringify(builds.scalarPlain.build));
  check(
    builds.simd.recs.length === 8 && JSON.stringify(builds.simd.recs) === JSON.stringify(builds.fullSimd.recs),
    'the lean relaxed build recommends exactly what the full relaxed build does on SIMD (items and scores)',
    JSON.stringify([builds.simd.recs, builds.fullSimd.recs]),
  );

  // A page without WebGPU (navigator.gpu removed before any script runs) gets the lean
  // build with the default backend, in the worker too.
  const noGpu = await context.newPage();
  noGpu.on('pageerror', (e) => check(false, 'no page error (no WebGPU)', e.message));
  noGpu.setDefaultTimeout(LOAD_TIMEOUT);
  await noGpu.addInitScript(() => {
    delete Navigator.prototype.gpu;
  });
  await noGpu.goto(BLANK);
  const lean = await noGpu.evaluate(async (model) => {
    const { load } = await import('/www/vitrine.js');
    const out = { hasGpu: 'gpu' in navigator };
    for (const worker of [true, false]) {
      const v = await load(model, { worker, namespace: 'e2e-no-gpu' });
      out[worker ? 'worker' : 'main'] = { build: v.build, backend: v.backend, recs: (await v.recommend({ k: 5 })).length };
      v.dispose();
    }
    // The main-thread load's requests (the worker's are in its own timeline): the
    // package's glue and its wasm, the wasm requested once, before the glue had arrived.
    const mine = (end) => performance.getEntriesByType('resource').filter((r) => new URL(r.name).pathname.endsWith(end));
    const glue = mine('/pkg/lean-relaxed/vitrine.js');
    const wasm = mine('/pkg/lean-relaxed/vitrine_bg.wasm');
    out.requests = {
      glue: glue.map((r) => [r.startTime, r.responseEnd]),
      wasm: wasm.map((r) => [r.startTime, r.responseEnd]),
    };
    const { wasmUrlOf } = await import('/www/vitrine.js');
    out.wasmUrls = ['/pkg/vitrine.js', '/pkg/lean/vitrine.js?v=2', '/x/other.js', '/x/vitrine.mjs'].map((u) => {
      const w = wasmUrlOf(u);
      return w === null ? null : new URL(w).pathname;
    });
    return out;
  }, MODEL);
  check(
    lean.requests.glue.length === 1 && lean.requests.wasm.length === 1 && lean.requests.wasm[0][0] <= lean.requests.glue[0][1],
    "load() (main thread): the package's wasm is requested once, and as its glue is imported, not after",
    JSON.stringify(lean.requests),
  );
  check(
    JSON.stringify(lean.wasmUrls) === JSON.stringify(['/pkg/vitrine_bg.wasm', '/pkg/lean/vitrine_bg.wasm', null, null]),
    'wasmUrlOf: vitrine_bg.wasm beside a vitrine.js glue, null for a glue of another name',
    JSON.stringify(lean.wasmUrls),
  );
  check(
    lean.hasGpu === false && lean.worker.build.gpu === false && lean.main.build.gpu === false && lean.worker.recs === 5 && lean.main.recs === 5,
    'load() in a page without navigator.gpu: the lean build, in the worker and on the main thread, and it recommends',
    JSON.stringify(lean),
  );
  await noGpu.close();
} catch (e) {
  check(false, 'loader test ran to the end', e.stack || String(e));
} finally {
  await browser.close();
}
finish('loader');
