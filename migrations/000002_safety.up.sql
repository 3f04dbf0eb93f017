-- The safety stage's summary per execution (identifiers found per type,
-- conversations per crisis level, records quarantined): counts only.
ALTER TABLE executions ADD COLUMN safety jsonb;
