ALTER TABLE executions DROP COLUMN bias;
ALTER TABLE executions DROP COLUMN quality;
