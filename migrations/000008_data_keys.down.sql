ALTER TABLE executions DROP COLUMN data_deleted_at;
DROP TABLE data_keys;
