ALTER TABLE executions DROP COLUMN fusion;
