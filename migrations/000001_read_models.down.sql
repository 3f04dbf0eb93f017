DROP TABLE projector_offsets;
DROP TABLE audit_events;
DROP TABLE alerts;
DROP TABLE output_files;
DROP TABLE source_runs;
DROP TABLE stage_runs;
DROP TABLE executions;
