// A real @auth/core `Auth()` handler with `session: { strategy: "database" }`
// whose adapter is the *Python* adapter of the test: every adapter call is a
// JSON POST to AUTHJS_ADAPTER_RPC, which the test serves from the same
// authsession adapter (MemoryAdapter, SQLiteAdapter, ...) authsession reads.
// So Auth.js and authsession share one store, as a Next.js app and a Python
// service share one database.
//
// Listens on 127.0.0.1 (ephemeral port), prints `{"port": N}` once listening,
// runs until stdin closes.
//
// Environment:
//   AUTHSESSION_NODE_MODULES  tests/interop/node_modules (this file lives elsewhere)
//   AUTH_SECRET               Auth.js requires one even for database sessions
//   AUTHJS_ADAPTER_RPC        http://127.0.0.1:<port>/rpc
//   AUTH_MAX_AGE, AUTH_UPDATE_AGE   session.maxAge / session.updateAge (seconds)
//   AUTH_SESSION_CALLBACK     "" (Auth.js's default) or "user-id": builds
//                             {user: {name, email, image, id}, expires: session.expires}

import http from "node:http";
import path from "node:path";
import { pathToFileURL } from "node:url";

const modules = process.env.AUTHSESSION_NODE_MODULES;
const load = (rel) => import(pathToFileURL(path.join(modules, rel)).href);
const { Auth } = await load("@auth/core/index.js");
const GitHub = (await load("@auth/core/providers/github.js")).default;

const rpcUrl = process.env.AUTHJS_ADAPTER_RPC;
const DATE_KEYS = new Set(["expires", "emailVerified"]);

function revive(value) {
  if (Array.isArray(value)) return value.map(revive);
  if (value && typeof value === "object") {
    const out = {};
    for (const [k, v] of Object.entries(value)) {
      out[k] = DATE_KEYS.has(k) && typeof v === "string" ? new Date(v) : revive(v);
    }
    return out;
  }
  return value;
}

async function rpc(method, args) {
  const res = await fetch(rpcUrl, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ method, args }),
  });
  const body = await res.json();
  if (!res.ok) throw new Error(`adapter rpc ${method}: ${body.error}`);
  return revive(body.result);
}

const adapter = {
  createUser: (user) => rpc("create_user", { user }),
  getUser: (id) => rpc("get_user", { id }),
  getUserByEmail: (email) => rpc("get_user_by_email", { email }),
  getUserByAccount: ({ provider, providerAccountId }) =>
    rpc("get_user_by_account", { provider, provider_account_id: providerAccountId }),
  updateUser: (user) => rpc("update_user", { user }),
  linkAccount: (account) => rpc("link_account", { account }),
  createSession: ({ sessionToken, userId, expires }) =>
    rpc("create_session", { session_token: sessionToken, user_id: userId, expires }),
  getSessionAndUser: (sessionToken) => rpc("get_session_and_user", { session_token: sessionToken }),
  updateSession: ({ sessionToken, expires }) =>
    rpc("update_session", { session_token: sessionToken, expires }),
  deleteSession: (sessionToken) => rpc("delete_session", { session_token: sessionToken }),
};

const maxAge = process.env.AUTH_MAX_AGE ? Number(process.env.AUTH_MAX_AGE) : undefined;
const updateAge = process.env.AUTH_UPDATE_AGE ? Number(process.env.AUTH_UPDATE_AGE) : undefined;

const config = {
  secret: process.env.AUTH_SECRET,
  trustHost: true,
  basePath: "/api/auth",
  adapter,
  session: {
    strategy: "database",
    ...(maxAge !== undefined ? { maxAge } : {}),
    ...(updateAge !== undefined ? { updateAge } : {}),
  },
  providers: [GitHub({ clientId: "interop", clientSecret: "interop" })],
  logger: {
    error: (e) => console.error("[auth][error]", e),
    warn: (code) => console.error("[auth][warn]", code),
    debug: () => {},
  },
};
if (process.env.AUTH_SESSION_CALLBACK === "user-id") {
  config.callbacks = {
    session: ({ session, user }) => ({
      user: { name: user.name, email: user.email, image: user.image, id: user.id },
      expires: session.expires,
    }),
  };
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
    const chunks = [];
    for await (const chunk of req) chunks.push(chunk);
    const body = Buffer.concat(chunks);
    if (body.length > 0) init.body = body;
  }
  return new Request(url, init);
}

const server = http.createServer(async (req, res) => {
  try {
    const response = await Auth(await toWebRequest(req), config);
    const headers = {};
    for (const [name, value] of response.headers) {
      if (name.toLowerCase() !== "set-cookie") headers[name] = value;
    }
    const cookies = response.headers.getSetCookie();
    if (cookies.length > 0) headers["set-cookie"] = cookies;
    res.writeHead(response.status, headers);
    res.end(Buffer.from(await response.arrayBuffer()));
  } catch (e) {
    console.error("[authjs_database_server] unhandled", e);
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
