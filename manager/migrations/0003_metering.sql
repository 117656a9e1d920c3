-- Metering, quotas and credits (docs/hosted.md "Metering and quotas").
--
-- usage_counters: what nodes report, cumulative per key group of a project
-- and month. A key group's counter lives in the same RocksDB commit as the
-- executions it counts and moves with the group, so a report only ever
-- raises it: a repeat, a late report or a replica behind is a no-op.
CREATE TABLE usage_counters (
  team_id     bigint NOT NULL REFERENCES teams ON DELETE CASCADE,
  project     text NOT NULL,
  month       text NOT NULL CHECK (month ~ '^[0-9]{4}-[0-9]{2}$'),
  key_group   integer NOT NULL CHECK (key_group >= 0),
  executions  bigint NOT NULL CHECK (executions >= 0),
  updated_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (project, month, key_group)
);
CREATE INDEX usage_counters_team_month ON usage_counters (team_id, month);

-- A node's lease of a team's executions for a month: what it may still run
-- without asking again. Counted as taken while renewed within 10 seconds.
CREATE TABLE quota_leases (
  team_id     bigint NOT NULL REFERENCES teams ON DELETE CASCADE,
  month       text NOT NULL,
  node        text NOT NULL,
  lease       bigint NOT NULL CHECK (lease >= 0),
  renewed_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (team_id, month, node)
);

-- Credits: executions given (a reward, a goodwill gesture), used before the
-- plan's executions of the month they are spent in.
CREATE TABLE credit_grants (
  id          bigserial PRIMARY KEY,
  team_id     bigint NOT NULL REFERENCES teams ON DELETE CASCADE,
  executions  bigint NOT NULL CHECK (executions > 0),
  reason      text NOT NULL,
  granted_by  bigint REFERENCES accounts ON DELETE SET NULL,
  created_at  timestamptz NOT NULL DEFAULT now()
);

-- A team's month: executions (the sum of its counters) and how many of
-- them credits paid for, kept up to date at each report.
CREATE TABLE team_months (
  team_id       bigint NOT NULL REFERENCES teams ON DELETE CASCADE,
  month         text NOT NULL,
  executions    bigint NOT NULL DEFAULT 0,
  credits_used  bigint NOT NULL DEFAULT 0,
  PRIMARY KEY (team_id, month)
);
