// Prints what a vitrine weight file holds, in one line, and says whether it is the full
// default model (`vitrine train` with its defaults) or a reduced or outdated one (`--quick`,
// fewer users, another width; written before the weight file recorded its trained event
// kinds or carried the basket section). Exit status: 0 full default, 3 reduced or
// outdated, 2 unreadable.
// Usage: node scripts/model-info.mjs www/models/online-retail.vitrine
import fs from 'node:fs';

const MAX_HEADER = 256 * 1024 * 1024; // the format's own cap (docs/weight-format.md)
const path = process.argv[2];
try {
  const fd = fs.openSync(path, 'r');
  const head = Buffer.alloc(8);
  fs.readSync(fd, head, 0, 8, 0);
  const n = Number(head.readBigUInt64LE(0));
  if (!(n > 0 && n <= MAX_HEADER)) throw new Error(`header length ${n} out of range`);
  const buf = Buffer.alloc(n);
  fs.readSync(fd, buf, 0, n, 8);
  fs.closeSync(fd);
  const header = JSON.parse(buf.toString('utf8'));
  const meta = JSON.parse(header.__metadata__.vitrine);
  const m = meta.model;
  const t = meta.training || {};
  const c = t.config || {};
  const reasons = [];
  if (t.preset && t.preset !== 'default') reasons.push(`trained with --${t.preset}`);
  if (m.dim !== 64) reasons.push(`d = ${m.dim} (default 64)`);
  if (c.epochs !== undefined && c.epochs < 12) reasons.push(`${c.epochs} epochs at most (default 12)`);
  if (!meta.trained_kinds) reasons.push('written before the trained event kinds were recorded');
  if (!Object.keys(header).some((k) => k.startsWith('basket.'))) reasons.push('no basket (bought-together) section');
  const full = meta.metrics?.['full ranking']?.[0];
  const ndcg = full?.[1]?.at_k?.find((a) => a.k === 10)?.ndcg;
  console.log(
    `${path}: ${m.n_items} items, ${t.users ?? '?'} training users, d = ${m.dim}, ${meta.quantization}, best epoch ${t.best_epoch ?? '?'}` +
      (ndcg !== undefined ? `, test NDCG@10 ${Number(ndcg).toFixed(4)}` : '') +
      (reasons.length ? ` — NOT the full default model: ${reasons.join(', ')}` : ' — the full default model'),
  );
  process.exit(reasons.length ? 3 : 0);
} catch (e) {
  console.error(`${path}: not a readable vitrine weight file (${e.message})`);
  process.exit(2);
}
