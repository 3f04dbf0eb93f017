DROP TABLE access_events;
DROP TABLE access_chains;
