ALTER TABLE executions DROP COLUMN safety;
