-- The @auth/pg-adapter schema (https://authjs.dev/getting-started/adapters/pg),
-- table for table and column for column, so authsession and an Auth.js app
-- share one database. Idempotent: safe to run on a database Auth.js already uses.
-- Apply with `authsession db init --dsn DSN [--schema S]`, or `psql -f`.

CREATE TABLE IF NOT EXISTS verification_token
(
  identifier TEXT NOT NULL,
  expires TIMESTAMPTZ NOT NULL,
  token TEXT NOT NULL,

  PRIMARY KEY (identifier, token)
);

CREATE TABLE IF NOT EXISTS accounts
(
  id SERIAL,
  "userId" INTEGER NOT NULL,
  type VARCHAR(255) NOT NULL,
  provider VARCHAR(255) NOT NULL,
  "providerAccountId" VARCHAR(255) NOT NULL,
  refresh_token TEXT,
  access_token TEXT,
  expires_at BIGINT,
  id_token TEXT,
  scope TEXT,
  session_state TEXT,
  token_type TEXT,

  PRIMARY KEY (id)
);

CREATE TABLE IF NOT EXISTS sessions
(
  id SERIAL,
  "userId" INTEGER NOT NULL,
  expires TIMESTAMPTZ NOT NULL,
  "sessionToken" VARCHAR(255) NOT NULL,

  PRIMARY KEY (id)
);

CREATE TABLE IF NOT EXISTS users
(
  id SERIAL,
  name VARCHAR(255),
  email VARCHAR(255),
  "emailVerified" TIMESTAMPTZ,
  image TEXT,

  PRIMARY KEY (id)
);

-- Not in the Auth.js schema: plain (non-unique) indexes for the lookups every
-- request makes. They change no behaviour, only turn table scans into index
-- scans; drop them if your migrations manage indexes themselves.
CREATE INDEX IF NOT EXISTS sessions_session_token_idx ON sessions ("sessionToken");
CREATE INDEX IF NOT EXISTS sessions_user_id_idx ON sessions ("userId");
CREATE INDEX IF NOT EXISTS accounts_provider_idx ON accounts (provider, "providerAccountId");
CREATE INDEX IF NOT EXISTS users_email_idx ON users (email);
