#!/usr/bin/env node
// Tiny static file server for the demo storefront and the e2e test (node built-ins only).
// Serves the repository root on 127.0.0.1: open http://127.0.0.1:<port>/www/ .
// Usage: node scripts/serve.mjs [--port 8080] [--root <dir>] [--gzip] [--gzip-weights]
//   (--port 0 = any free port)
// Prints "listening on http://127.0.0.1:<port>/" once ready. GET and HEAD only.
// --gzip: code and text (.js, .mjs, .wasm, .json, .html, .css) go out gzip-encoded
// (level 9, each file compressed once per modification) to a client that accepts it, as
// a production host would send them; weight files (.vitrine, .onnx, .bin, ...) stay as
// they are; --gzip-weights: the weight files too (.vitrine, .onnx, .bin, .safetensors:
// every engine's), as a host configured to compress them would send them. For benchmarks
// over an emulated link (bench/engines/cold-latency.mjs), where the bytes on the wire are
// what the link's throughput limits.
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { fileURLToPath } from 'node:url';

const args = process.argv.slice(2);
function arg(name, fallback) {
  const i = args.indexOf(name);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : fallback;
}
const port = Number(arg('--port', process.env.PORT || '8080'));
const gzipWeights = args.includes('--gzip-weights');
const gzip = gzipWeights || args.includes('--gzip');
const COMPRESSED = new Set([
  '.js', '.mjs', '.wasm', '.json', '.html', '.css',
  ...(gzipWeights ? ['.vitrine', '.onnx', '.bin', '.safetensors'] : []),
]);
// path -> { mtimeMs, body }: each file's gzip, made on first request.
const gzipped = new Map();
const root = path.resolve(arg('--root', path.join(path.dirname(fileURLToPath(import.meta.url)), '..')));
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`serve.mjs: bad --port ${arg('--port')}`);
  process.exit(2);
}

const MIME = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.wasm': 'application/wasm',
  '.vitrine': 'application/octet-stream',
  '.safetensors': 'application/octet-stream',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
  '.ico': 'image/x-icon',
  '.txt': 'text/plain; charset=utf-8',
  '.md': 'text/markdown; charset=utf-8',
  '.ts': 'text/plain; charset=utf-8',
};

// The demo's Content-Security-Policy, sent with every response under /www/ (the storefront,
// its bench page and its Worker, whose policy comes from its own script's response).
// www/index.html carries the same policy as a meta tag for static hosting, less
// frame-ancestors, which only a header can set. Pages outside www/ (bench/search/) are
// measurement harnesses with their own import maps and get no policy.
const CSP = [
  "default-src 'self'",
  "script-src 'self' 'wasm-unsafe-eval'",
  "style-src 'self'",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
].join('; ');

const server = http.createServer((req, res) => {
  const send = (code, body) => {
    res.writeHead(code, { 'content-type': 'text/plain; charset=utf-8' });
    res.end(body);
  };
  if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, 'method not allowed\n');
  let rel;
  try {
    rel = decodeURIComponent(new URL(req.url, 'http://localhost').pathname);
  } catch {
    return send(400, 'bad request\n');
  }
  if (rel.includes('\0')) return send(400, 'bad request\n');
  let file = path.join(root, path.normalize(rel));
  if (file !== root && !file.startsWith(root + path.sep)) return send(403, 'forbidden\n');
  fs.stat(file, (err, st) => {
    if (!err && st.isDirectory()) {
      if (!rel.endsWith('/')) {
        res.writeHead(301, { location: rel + '/' });
        return res.end();
      }
      file = path.join(file, 'index.html');
      return fs.stat(file, (e2, st2) => (e2 || !st2.isFile() ? send(404, 'not found\n') : stream(file, st2)));
    }
    if (err || !st.isFile()) return send(404, 'not found\n');
    stream(file, st);
  });
  function stream(f, st) {
    const ext = path.extname(f).toLowerCase();
    const headers = {
      'content-type': MIME[ext] || 'application/octet-stream',
      'content-length': st.size,
      'cache-control': 'no-cache',
      'x-content-type-options': 'nosniff',
      ...(rel.startsWith('/www/') ? { 'content-security-policy': CSP } : {}),
    };
    if (gzip && COMPRESSED.has(ext) && /\bgzip\b/.test(req.headers['accept-encoding'] || '')) {
      let z = gzipped.get(f);
      if (!z || z.mtimeMs !== st.mtimeMs) {
        try {
          z = { mtimeMs: st.mtimeMs, body: zlib.gzipSync(fs.readFileSync(f), { level: 9 }) };
        } catch {
          return send(500, 'cannot read the file\n');
        }
        gzipped.set(f, z);
      }
      res.writeHead(200, { ...headers, 'content-length': z.body.length, 'content-encoding': 'gzip', vary: 'accept-encoding' });
      return res.end(req.method === 'HEAD' ? undefined : z.body);
    }
    res.writeHead(200, headers);
    if (req.method === 'HEAD') return res.end();
    fs.createReadStream(f).on('error', () => res.destroy()).pipe(res);
  }
});

server.listen(port, '127.0.0.1', () => {
  console.log(`listening on http://127.0.0.1:${server.address().port}/ (root ${root})`);
});
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => server.close(() => process.exit(0)));
