// A long-running JSON-lines worker around the real Auth.js / next-auth JWT code.
//
// Reads one JSON request per line on stdin and writes exactly one JSON response
// per line on stdout, in order. Requests:
//
//   {"op":"encode","lib":"v5","token":{...},"secret":"s"|["s1","s2"],"salt":"...","maxAge":N}
//   {"op":"encode","lib":"v4","token":{...},"secret":"s","maxAge":N}
//   {"op":"decode","lib":"v5"|"v4","jwt":"...","secret":...,"salt":"..."}
//   {"op":"header","jwt":"..."}
//   {"op":"encrypt_raw","claims":{...},"key":"<base64url>","enc":"A256GCM",
//        "kid":"..."|null,"iat":N,"exp":N}        -- a JWE made with jose directly
//   {"op":"derive","lib":"v5","secret":"s","salt":"...","enc":"A256CBC-HS512"|"A256GCM"}
//        -> {"ok":true,"key":"<base64url>","kid":"<jwk thumbprint>"}
//   {"op":"ping"}
//
// Responses: {"ok":true,...} or {"ok":false,"error":"<message>"}; an optional
// "id" in the request is echoed back.

import { createInterface } from "node:readline";
import { createRequire } from "node:module";
import * as v5 from "@auth/core/jwt";
import { EncryptJWT, base64url, calculateJwkThumbprint, decodeProtectedHeader } from "jose";
import { hkdfSync } from "node:crypto";

// next-auth v4 is CommonJS; load it through require so its own nested jose@4 is used.
const require = createRequire(import.meta.url);
const v4 = require("next-auth/jwt");

const libs = { v5, v4 };

function pickLib(name) {
  const lib = libs[name];
  if (!lib) throw new Error(`unknown lib ${JSON.stringify(name)} (want "v5" or "v4")`);
  return lib;
}

async function v5Key(secret, salt, enc) {
  const length = enc === "A256GCM" ? 32 : 64;
  const key = new Uint8Array(
    hkdfSync("sha256", secret, salt, `Auth.js Generated Encryption Key (${salt})`, length),
  );
  const kid = await calculateJwkThumbprint(
    { kty: "oct", k: base64url.encode(key) },
    `sha${key.byteLength << 3}`,
  );
  return { key, kid };
}

async function handle(req) {
  switch (req.op) {
    case "ping":
      return { ok: true };
    case "encode": {
      const lib = pickLib(req.lib ?? "v5");
      const params = { token: req.token ?? {}, secret: req.secret };
      if (req.maxAge !== undefined && req.maxAge !== null) params.maxAge = req.maxAge;
      if (req.salt !== undefined && req.salt !== null) params.salt = req.salt;
      if ((req.lib ?? "v5") === "v5" && params.salt === undefined) {
        throw new Error("v5 encode needs a salt");
      }
      const jwt = await lib.encode(params);
      return { ok: true, jwt };
    }
    case "decode": {
      const lib = pickLib(req.lib ?? "v5");
      const params = { token: req.jwt, secret: req.secret };
      if (req.salt !== undefined && req.salt !== null) params.salt = req.salt;
      const payload = await lib.decode(params);
      if (payload === null || payload === undefined) return { ok: false, error: "decode returned null" };
      return { ok: true, payload };
    }
    case "header":
      return { ok: true, header: decodeProtectedHeader(req.jwt) };
    case "derive": {
      const { key, kid } = await v5Key(req.secret, req.salt, req.enc ?? "A256CBC-HS512");
      return { ok: true, key: base64url.encode(key), kid };
    }
    case "encrypt_raw": {
      const enc = req.enc ?? "A256GCM";
      const key = base64url.decode(req.key);
      const header = { alg: "dir", enc };
      if (req.kid) header.kid = req.kid;
      const now = (Date.now() / 1000) | 0;
      const jwt = await new EncryptJWT(req.claims ?? {})
        .setProtectedHeader(header)
        .setIssuedAt(req.iat ?? now)
        .setExpirationTime(req.exp ?? now + 3600)
        .setJti(req.jti ?? crypto.randomUUID())
        .encrypt(key);
      return { ok: true, jwt };
    }
    default:
      throw new Error(`unknown op ${JSON.stringify(req.op)}`);
  }
}

const rl = createInterface({ input: process.stdin, crlfDelay: Infinity, terminal: false });

// Requests are handled strictly one after another so responses keep request order.
let chain = Promise.resolve();
rl.on("line", (line) => {
  if (!line.trim()) return;
  chain = chain.then(async () => {
    let req;
    let res;
    try {
      req = JSON.parse(line);
      res = await handle(req);
    } catch (e) {
      res = { ok: false, error: String(e?.message ?? e), code: e?.code ?? e?.name ?? null };
    }
    if (req && typeof req === "object" && "id" in req) res.id = req.id;
    process.stdout.write(JSON.stringify(res) + "\n");
  });
});
rl.on("close", () => {
  chain.then(() => process.exit(0));
});
