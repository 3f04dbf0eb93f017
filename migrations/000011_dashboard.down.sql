ALTER TABLE executions DROP COLUMN IF EXISTS estimated_total;
DROP INDEX IF EXISTS executions_created;
