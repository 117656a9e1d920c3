-- Billing (docs/hosted.md "Billing and payment"): the operator's switch,
-- subscriptions through a payment provider, monthly invoices, and the
-- provider's events already handled (webhooks are idempotent on their ids).
ALTER TABLE plans ADD COLUMN overage_cents_per_million bigint NOT NULL DEFAULT 0
  CHECK (overage_cents_per_million >= 0);
ALTER TABLE plans ADD COLUMN stripe_price text;
UPDATE plans SET overage_cents_per_million = CASE name
  WHEN 'pro' THEN 2000 WHEN 'premium' THEN 1500 WHEN 'dedicated' THEN 1000 ELSE 0 END;

CREATE TABLE billing (
  singleton     boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  paid_enabled  boolean NOT NULL DEFAULT false
);
INSERT INTO billing VALUES (true, false);

CREATE TABLE subscriptions (
  team_id           bigint PRIMARY KEY REFERENCES teams ON DELETE CASCADE,
  plan              text NOT NULL REFERENCES plans,
  status            text NOT NULL CHECK (status IN ('pending', 'active', 'canceled')),
  provider          text NOT NULL,
  checkout_session  text,
  customer          text,
  subscription      text,
  updated_at        timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE invoices (
  id                bigserial PRIMARY KEY,
  team_id           bigint NOT NULL REFERENCES teams ON DELETE CASCADE,
  month             text NOT NULL,
  plan              text NOT NULL,
  plan_fee_cents    bigint NOT NULL,
  executions        bigint NOT NULL,
  included          bigint NOT NULL,
  credits_used      bigint NOT NULL,
  over_plan         bigint NOT NULL,
  overage_cents     bigint NOT NULL,
  total_cents       bigint NOT NULL,
  status            text NOT NULL CHECK (status IN ('open', 'paid', 'void')),
  provider_invoice  text UNIQUE,
  created_at        timestamptz NOT NULL DEFAULT now(),
  paid_at           timestamptz,
  UNIQUE (team_id, month)
);

CREATE TABLE payment_events (
  provider     text NOT NULL,
  event_id     text NOT NULL,
  type         text NOT NULL,
  received_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (provider, event_id)
);
