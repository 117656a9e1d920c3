-- A paying team's spending limit (docs/hosted.md "Billing and payment"):
-- at most this much a month, fee included; the executions it pays for past
-- the plan and credits are its cap. NULL: no limit.
ALTER TABLE teams ADD COLUMN spending_limit_cents bigint CHECK (spending_limit_cents >= 0);
