-- Balancing's achieved distribution per execution: counts only.
ALTER TABLE executions ADD COLUMN balancing jsonb;
