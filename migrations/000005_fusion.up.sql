-- The fusion stage's summary per execution (clusters, records removed as
-- exact and near duplicates, kept per source): counts only.
ALTER TABLE executions ADD COLUMN fusion jsonb;
