ALTER TABLE executions DROP COLUMN balancing;
