-- Dedicated placement (docs/hosted.md "Dedicated nodes"): a team on a plan
-- with dedicated nodes runs on a pool of engine nodes of its own (nodes
-- started with --pool NAME); NULL is the shared pool. A pool serves one team.
ALTER TABLE teams ADD COLUMN pool text
  CHECK (pool ~ '^[a-z0-9][a-z0-9-]{0,62}$' AND pool <> 'shared');
CREATE UNIQUE INDEX teams_pool ON teams (pool) WHERE pool IS NOT NULL;

-- A team put on a plan without dedicated nodes goes back to the shared pool,
-- whichever path changed its plan (an operator, a subscription's end).
CREATE FUNCTION teams_pool_follows_plan() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.pool IS NOT NULL AND NOT (SELECT dedicated FROM plans WHERE name = NEW.plan) THEN
    NEW.pool := NULL;
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER teams_pool_follows_plan BEFORE UPDATE OF plan ON teams
  FOR EACH ROW EXECUTE FUNCTION teams_pool_follows_plan();

-- The engine nodes as their usage reports describe them: where a team's
-- pool can be reached (its developers deploy there).
CREATE TABLE engine_nodes (
  node      text PRIMARY KEY,  -- its name, without the incarnation
  pool      text NOT NULL,
  admin_url text NOT NULL,
  flows_url text NOT NULL,
  seen_at   timestamptz NOT NULL
);
