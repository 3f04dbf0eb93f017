-- Records rejected per source for want of consent (processing.require_consent).
ALTER TABLE source_runs ADD COLUMN no_consent bigint NOT NULL DEFAULT 0;
