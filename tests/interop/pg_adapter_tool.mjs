// A long-running JSON-lines worker around the real @auth/pg-adapter (with `pg`).
//
// Environment: AUTHSESSION_PG_DSN (a libpq URL) and AUTHSESSION_PG_SCHEMA (the
// schema holding the Auth.js tables; put first on the search_path).
//
// Reads one JSON request per line on stdin and writes exactly one JSON response
// per line on stdout, in order. Each request names an adapter method and its
// single argument, as Auth.js itself calls it:
//
//   {"op":"createUser","arg":{"name":...,"email":...,"emailVerified":"<ISO>"|null,"image":...}}
//   {"op":"getUser","arg":"<id>"}
//   {"op":"getUserByAccount","arg":{"provider":...,"providerAccountId":...}}
//   {"op":"linkAccount","arg":{...AdapterAccount}}
//   {"op":"createSession","arg":{"sessionToken":...,"userId":...,"expires":"<ISO>"}}
//   {"op":"getSessionAndUser","arg":"<sessionToken>"}
//   {"op":"updateSession","arg":{"sessionToken":...,"expires":"<ISO>"}}
//   {"op":"deleteSession","arg":"<sessionToken>"}
//   {"op":"createVerificationToken","arg":{"identifier":...,"token":...,"expires":"<ISO>"}}
//   {"op":"useVerificationToken","arg":{"identifier":...,"token":...}}
//   {"op":"ping"}
//
// Responses: {"ok":true,"result":<the method's result, Dates as ISO strings>}
// or {"ok":false,"error":"<message>"}.

import { createInterface } from "node:readline";
import PostgresAdapter from "@auth/pg-adapter";
import pg from "pg";

const dsn = process.env.AUTHSESSION_PG_DSN;
const schema = process.env.AUTHSESSION_PG_SCHEMA;
if (!dsn || !schema) {
  console.error("set AUTHSESSION_PG_DSN and AUTHSESSION_PG_SCHEMA");
  process.exit(2);
}

const pool = new pg.Pool({
  connectionString: dsn,
  options: `-c search_path=${schema}`,
  max: 2,
});
const adapter = PostgresAdapter(pool);

// Auth.js hands adapters Date objects; JSON carries ISO strings.
const DATE_FIELDS = ["expires", "emailVerified"];
function withDates(arg) {
  if (arg === null || typeof arg !== "object") return arg;
  const out = { ...arg };
  for (const key of DATE_FIELDS) {
    if (typeof out[key] === "string") out[key] = new Date(out[key]);
  }
  return out;
}

async function handle(req) {
  if (req.op === "ping") return { ok: true, result: null };
  const method = adapter[req.op];
  if (typeof method !== "function") throw new Error(`unknown op ${JSON.stringify(req.op)}`);
  const result = await method(withDates(req.arg));
  return { ok: true, result: result === undefined ? null : result };
}

const lines = createInterface({ input: process.stdin, terminal: false });
let queue = Promise.resolve();
lines.on("line", (line) => {
  if (!line.trim()) return;
  queue = queue.then(async () => {
    let response;
    try {
      response = await handle(JSON.parse(line));
    } catch (err) {
      response = { ok: false, error: String(err?.message ?? err) };
    }
    process.stdout.write(JSON.stringify(response) + "\n");
  });
});
lines.on("close", () => {
  queue.then(() => pool.end());
});
