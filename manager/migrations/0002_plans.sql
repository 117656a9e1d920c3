-- Plans as data, and each team's plan. A plan's limits become the nodes'
-- ceiling for the team's projects (timeout and memory per function call);
-- executions per month, log retention, custom drivers and dedicated nodes
-- are recorded here for metering and placement (docs/hosted.md).
CREATE TABLE plans (
  name                  text PRIMARY KEY,
  executions_per_month  bigint NOT NULL CHECK (executions_per_month > 0),
  timeout_ms            integer NOT NULL CHECK (timeout_ms > 0),
  memory_mib            integer NOT NULL CHECK (memory_mib > 0),
  log_retention_days    integer NOT NULL CHECK (log_retention_days > 0),
  custom_drivers        boolean NOT NULL,
  dedicated             boolean NOT NULL,
  monthly_price_cents   integer NOT NULL CHECK (monthly_price_cents >= 0),
  position              integer NOT NULL
);

INSERT INTO plans VALUES
  ('free',      10000,     1000,  128,  1, false, false,      0, 1),
  ('pro',       1000000,   10000, 256,  7, true,  false,   2000, 2),
  ('premium',   10000000,  30000, 512, 30, true,  false,  20000, 3),
  ('dedicated', 100000000, 60000, 1024, 90, true, true,  100000, 4);

ALTER TABLE teams ADD COLUMN plan text NOT NULL DEFAULT 'free' REFERENCES plans;
