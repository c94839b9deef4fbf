-- The Auth.js SQL schema (the @auth/pg-adapter tables and camelCase columns)
-- for SQLite. Differences, because SQLite has no SERIAL or TIMESTAMPTZ:
--   * users.id is TEXT (a uuid unless the caller gives one) and "userId" TEXT;
--   * datetimes are TEXT, ISO 8601 UTC with milliseconds ("2026-11-22T18:34:42.123Z",
--     what JavaScript's Date.toISOString writes), so text order is time order.
--     Integer epoch milliseconds (Prisma, Drizzle "timestamp_ms") are read too.
-- Created on first use by SQLiteAdapter; idempotent.

CREATE TABLE IF NOT EXISTS verification_token
(
  identifier TEXT NOT NULL,
  expires TEXT NOT NULL,
  token TEXT NOT NULL,

  PRIMARY KEY (identifier, token)
);

CREATE TABLE IF NOT EXISTS accounts
(
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  "userId" TEXT NOT NULL,
  type TEXT NOT NULL,
  provider TEXT NOT NULL,
  "providerAccountId" TEXT NOT NULL,
  refresh_token TEXT,
  access_token TEXT,
  expires_at INTEGER,
  id_token TEXT,
  scope TEXT,
  session_state TEXT,
  token_type TEXT
);

CREATE TABLE IF NOT EXISTS sessions
(
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  "userId" TEXT NOT NULL,
  expires TEXT NOT NULL,
  "sessionToken" TEXT NOT NULL UNIQUE
);

CREATE TABLE IF NOT EXISTS users
(
  id TEXT NOT NULL PRIMARY KEY,
  name TEXT,
  email TEXT,
  "emailVerified" TEXT,
  image TEXT
);

CREATE INDEX IF NOT EXISTS sessions_user_id_idx ON sessions ("userId");
CREATE UNIQUE INDEX IF NOT EXISTS accounts_provider_idx ON accounts (provider, "providerAccountId");
CREATE INDEX IF NOT EXISTS users_email_idx ON users (email);
