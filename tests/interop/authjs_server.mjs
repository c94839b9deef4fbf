// A real @auth/core `Auth(request, config)` handler behind plain node `http`.
//
// Listens on 127.0.0.1 with an ephemeral port, prints exactly one line
// `{"port": N}` on stdout once listening, and runs until stdin closes or it gets
// SIGTERM/SIGINT.
//
// Environment:
//   AUTH_SECRET          the secret (required; a string, or a JSON list of strings)
//   AUTH_SECURE_COOKIES  "1" -> useSecureCookies: true (`__Secure-` names, even on http)
//   AUTH_BIG_CLAIM       n   -> the jwt callback puts a claim "blob" of n characters
//                              into the token at sign-in, and the session callback
//                              copies token.sub to session.user.id
//   AUTH_MAX_AGE         session maxAge in seconds (default: Auth.js's 30 days)
//   AUTH_DEBUG           "1" -> Auth.js debug logging (to stderr)
//
// Credentials provider: any username whose password is "pw" signs in as
//   {id: "user-<u>", name: <u>, email: "<u>@example.com", image: "https://example.com/<u>.png"}

import http from "node:http";
import { Auth } from "@auth/core";
import Credentials from "@auth/core/providers/credentials";

function parseSecret(raw) {
  if (!raw) throw new Error("AUTH_SECRET must be set");
  if (raw.trim().startsWith("[")) return JSON.parse(raw);
  return raw;
}

const secret = parseSecret(process.env.AUTH_SECRET);
const secureCookies = process.env.AUTH_SECURE_COOKIES === "1";
const bigClaim = process.env.AUTH_BIG_CLAIM ? Number.parseInt(process.env.AUTH_BIG_CLAIM, 10) : 0;
const maxAge = process.env.AUTH_MAX_AGE ? Number.parseInt(process.env.AUTH_MAX_AGE, 10) : undefined;
const debug = process.env.AUTH_DEBUG === "1";

function makeConfig() {
  const config = {
    secret,
    trustHost: true,
    basePath: "/api/auth",
    debug,
    session: { strategy: "jwt", ...(maxAge ? { maxAge } : {}) },
    providers: [
      Credentials({
        credentials: { username: { label: "Username" }, password: { label: "Password", type: "password" } },
        async authorize(credentials) {
          const username = credentials?.username;
          if (typeof username !== "string" || !username || credentials?.password !== "pw") return null;
          return {
            id: `user-${username}`,
            name: username,
            email: `${username}@example.com`,
            image: `https://example.com/${username}.png`,
          };
        },
      }),
    ],
    logger: {
      // Keep stdout for the single port line; everything else goes to stderr.
      error: (e) => console.error("[auth][error]", e),
      warn: (code) => console.error("[auth][warn]", code),
      debug: (msg, meta) => debug && console.error("[auth][debug]", msg, meta ?? ""),
    },
  };
  if (secureCookies) config.useSecureCookies = true;
  if (bigClaim > 0) {
    config.callbacks = {
      async jwt({ token, user }) {
        if (user) token.blob = "x".repeat(bigClaim);
        return token;
      },
      async session({ session, token }) {
        if (session.user) session.user.id = token.sub;
        return session;
      },
    };
  }
  return config;
}

async function readBody(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return Buffer.concat(chunks);
}

async function toWebRequest(req) {
  const url = new URL(req.url ?? "/", `http://${req.headers.host ?? "127.0.0.1"}`);
  const headers = new Headers();
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined) continue;
    if (Array.isArray(value)) for (const v of value) headers.append(name, v);
    else headers.set(name, value);
  }
  const init = { method: req.method, headers };
  if (req.method !== "GET" && req.method !== "HEAD") {
    const body = await readBody(req);
    if (body.length > 0) init.body = body;
  }
  return new Request(url, init);
}

async function writeWebResponse(res, response) {
  const headers = {};
  for (const [name, value] of response.headers) {
    if (name.toLowerCase() === "set-cookie") continue;
    headers[name] = value;
  }
  const cookies = response.headers.getSetCookie();
  if (cookies.length > 0) headers["set-cookie"] = cookies;
  const body = Buffer.from(await response.arrayBuffer());
  res.writeHead(response.status, headers);
  res.end(body);
}

const server = http.createServer(async (req, res) => {
  try {
    const request = await toWebRequest(req);
    const response = await Auth(request, makeConfig());
    await writeWebResponse(res, response);
  } catch (e) {
    console.error("[authjs_server] unhandled", e);
    if (!res.headersSent) res.writeHead(500, { "content-type": "text/plain" });
    res.end(String(e?.stack ?? e));
  }
});

function shutdown() {
  server.close();
  server.closeAllConnections?.();
  process.exit(0);
}

server.listen(0, "127.0.0.1", () => {
  process.stdout.write(JSON.stringify({ port: server.address().port }) + "\n");
});

process.stdin.on("end", shutdown);
process.stdin.on("close", shutdown);
process.stdin.resume();
process.on("SIGTERM", shutdown);
process.on("SIGINT", shutdown);
