-- A plan's largest function: its code with the packages bundled into it
-- (docs/hosted.md "Plans"), checked by the nodes at deploy.
ALTER TABLE plans ADD COLUMN max_function_bytes bigint NOT NULL DEFAULT 1048576 CHECK (max_function_bytes > 0);
UPDATE plans SET max_function_bytes = CASE name
  WHEN 'free' THEN 1048576 WHEN 'pro' THEN 10485760 WHEN 'premium' THEN 52428800 ELSE 104857600 END;
