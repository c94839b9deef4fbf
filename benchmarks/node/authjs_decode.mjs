// Times @auth/core's `decode` (Auth.js v5, `@auth/core/jwt`) in-process.
//
// Standalone:
//   node authjs_decode.mjs --token JWE --secret S --salt authjs.session-token [--n 20000] [--warmup 2000]
//   -> one JSON line: {"us_per_op": ..., "n": ..., "versions": {...}}
//
// Serve mode (used by benchmarks/jwt_decode.py to interleave node batches
// with the Python rows, so machine noise hits every row alike):
//   node authjs_decode.mjs --serve --token JWE --secret S --salt NAME [--warmup N]
//   -> first line {"ready": true, "versions": {...}, "check": <decoded sub>}
//   then, per stdin line {"n": N}, one line {"ns": <elapsed ns for N decodes>}
//
// @auth/core is resolved from tests/interop/node_modules (override with
// --modules DIR or AUTHJS_MODULES_DIR), the same install the interop tests use.

import { createRequire } from "node:module";
import { readFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));

function parseArgs(argv) {
  const args = { n: 20000, warmup: 2000, serve: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "--serve") args.serve = true;
    else if (arg.startsWith("--")) args[arg.slice(2)] = argv[++i];
  }
  args.n = Number(args.n);
  args.warmup = Number(args.warmup);
  return args;
}

const args = parseArgs(process.argv.slice(2));
if (!args.token || !args.secret || !args.salt) {
  process.stderr.write("usage: authjs_decode.mjs [--serve] --token JWE --secret S --salt NAME\n");
  process.exit(2);
}

const modulesDir = resolve(
  args.modules ?? process.env.AUTHJS_MODULES_DIR ?? join(here, "..", "..", "tests", "interop"),
);
const require = createRequire(join(modulesDir, "package.json"));
const jwtPath = require.resolve("@auth/core/jwt");
const { decode } = await import(pathToFileURL(jwtPath).href);

function versionOf(pkg) {
  try {
    const pkgJson = require.resolve(`${pkg}/package.json`);
    return JSON.parse(readFileSync(pkgJson, "utf8")).version;
  } catch {
    // Packages whose exports map hides package.json: walk up from the entry.
    try {
      let dir = dirname(require.resolve(pkg));
      for (let i = 0; i < 5; i++, dir = dirname(dir)) {
        try {
          const meta = JSON.parse(readFileSync(join(dir, "package.json"), "utf8"));
          if (meta.name === pkg) return meta.version;
        } catch {}
      }
    } catch {}
    return null;
  }
}

const versions = {
  node: process.versions.node,
  "@auth/core": versionOf("@auth/core"),
  jose: versionOf("jose"),
};

const params = { token: args.token, secret: args.secret, salt: args.salt };

async function run(n) {
  const start = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    await decode(params);
  }
  return process.hrtime.bigint() - start;
}

const first = await decode(params);
if (!first || typeof first !== "object") throw new Error("decode returned no payload");
await run(args.warmup);

if (!args.serve) {
  const ns = await run(args.n);
  process.stdout.write(
    JSON.stringify({ us_per_op: Number(ns) / 1000 / args.n, n: args.n, versions }) + "\n",
  );
} else {
  process.stdout.write(JSON.stringify({ ready: true, versions, check: first.sub ?? null }) + "\n");
  const rl = createInterface({ input: process.stdin });
  for await (const line of rl) {
    if (!line.trim()) continue;
    const { n } = JSON.parse(line);
    const ns = await run(n);
    process.stdout.write(JSON.stringify({ ns: Number(ns) }) + "\n");
  }
}
