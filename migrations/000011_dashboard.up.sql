-- The dashboard lists the latest executions of everyone (GET /recent).
CREATE INDEX executions_created ON executions (created_at DESC);
-- The processor's estimate of the records to come while acquisition runs
-- (StageProgress.estimated_total), so status shows progress from the start.
ALTER TABLE executions ADD COLUMN estimated_total BIGINT NOT NULL DEFAULT 0;
