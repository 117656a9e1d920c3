-- Dunning (docs/hosted.md "Billing and payment"): an invoice whose charge
-- failed (the provider's invoice.payment_failed; it retries), how many
-- attempts failed.
ALTER TABLE invoices DROP CONSTRAINT invoices_status_check;
ALTER TABLE invoices ADD CONSTRAINT invoices_status_check
  CHECK (status IN ('open', 'paid', 'void', 'payment_failed'));
ALTER TABLE invoices ADD COLUMN payment_attempts integer NOT NULL DEFAULT 0;
