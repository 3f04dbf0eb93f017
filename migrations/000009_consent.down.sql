ALTER TABLE source_runs DROP COLUMN no_consent;
