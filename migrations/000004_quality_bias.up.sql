-- The quality and bias stages' summaries per execution (score histogram,
-- rules failed; mentions per axis and group, the bias score): counts only.
ALTER TABLE executions ADD COLUMN quality jsonb;
ALTER TABLE executions ADD COLUMN bias jsonb;
