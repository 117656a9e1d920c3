-- Accounts, sessions, teams and their members, API tokens, invitations and
-- requests for them, sign-in failures (for the rate limit), projects.
CREATE TABLE accounts (
  id            bigserial PRIMARY KEY,
  email         text NOT NULL UNIQUE CHECK (email = lower(email) AND email LIKE '%_@_%'),
  name          text NOT NULL,
  password_hash text NOT NULL,                 -- argon2id (libsodium crypto_pwhash_str)
  operator      boolean NOT NULL DEFAULT false,
  created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE sessions (
  token_hash  bytea PRIMARY KEY,               -- BLAKE2b of the cookie's value
  account_id  bigint NOT NULL REFERENCES accounts ON DELETE CASCADE,
  csrf        text NOT NULL,                   -- sent back in X-CSRF-Token on every change
  created_at  timestamptz NOT NULL DEFAULT now(),
  expires_at  timestamptz NOT NULL
);
CREATE INDEX sessions_account ON sessions (account_id);

CREATE TABLE teams (
  id          bigserial PRIMARY KEY,
  name        text NOT NULL UNIQUE CHECK (name ~ '^[a-z0-9][a-z0-9-]{1,38}$'),
  created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE memberships (
  team_id     bigint NOT NULL REFERENCES teams ON DELETE CASCADE,
  account_id  bigint NOT NULL REFERENCES accounts ON DELETE CASCADE,
  role        text NOT NULL CHECK (role IN ('owner', 'admin', 'developer', 'viewer')),
  PRIMARY KEY (team_id, account_id)
);
CREATE INDEX memberships_account ON memberships (account_id);

CREATE TABLE api_tokens (
  id           bigserial PRIMARY KEY,
  team_id      bigint NOT NULL REFERENCES teams ON DELETE CASCADE,
  account_id   bigint NOT NULL REFERENCES accounts ON DELETE CASCADE,
  name         text NOT NULL,
  role         text NOT NULL CHECK (role IN ('owner', 'admin', 'developer', 'viewer')),
  token_hash   bytea NOT NULL UNIQUE,          -- BLAKE2b of the token; the token itself is shown once
  prefix       text NOT NULL,                  -- its first characters, to recognise it in a list
  created_at   timestamptz NOT NULL DEFAULT now(),
  last_used_at timestamptz,
  revoked_at   timestamptz
);

CREATE TABLE invitation_requests (
  id          bigserial PRIMARY KEY,
  email       text NOT NULL,
  name        text NOT NULL,
  note        text NOT NULL DEFAULT '',
  status      text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'approved', 'declined')),
  created_at  timestamptz NOT NULL DEFAULT now(),
  decided_at  timestamptz,
  decided_by  bigint REFERENCES accounts ON DELETE SET NULL
);

CREATE TABLE invitations (
  id          bigserial PRIMARY KEY,
  token_hash  bytea NOT NULL UNIQUE,
  email       text NOT NULL,
  team_id     bigint REFERENCES teams ON DELETE CASCADE,     -- null: to sign up only
  role        text CHECK (role IN ('owner', 'admin', 'developer', 'viewer')),
  operator    boolean NOT NULL DEFAULT false,                 -- the first operator's invitation
  invited_by  bigint REFERENCES accounts ON DELETE SET NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  expires_at  timestamptz NOT NULL,
  used_at     timestamptz,
  used_by     bigint REFERENCES accounts ON DELETE SET NULL,
  CHECK ((team_id IS NULL) = (role IS NULL))
);

CREATE TABLE sign_in_failures (
  email    text NOT NULL,
  address  text NOT NULL,
  at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sign_in_failures_email ON sign_in_failures (email, at);

CREATE TABLE projects (
  id          bigserial PRIMARY KEY,
  team_id     bigint NOT NULL REFERENCES teams ON DELETE CASCADE,
  name        text NOT NULL CHECK (name ~ '^[a-z0-9][a-z0-9-]{1,38}$'),
  created_at  timestamptz NOT NULL DEFAULT now(),
  UNIQUE (team_id, name)
);
