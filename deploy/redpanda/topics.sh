#!/usr/bin/env bash
# Creates the pipeline's topics on a Redpanda cluster with rpk. The services
# also create missing topics at start (kadm); this script is for operators
# who manage topics explicitly. Usage: topics.sh [partitions] [replicas]
set -euo pipefail
P=${1:-6}
R=${2:-1}
PREFIX=${KAFKA_TOPIC_PREFIX:-}
for t in dataset.commands dataset.events dataset.records.raw dataset.records.staged dataset.records.outcomes dataset.access; do
  rpk topic create "${PREFIX}$t" -p "$P" -r "$R" || true
done
# The event log and the access log are the audit trail: keep them forever.
for t in dataset.events dataset.access; do
  rpk topic alter-config "${PREFIX}$t" --set retention.ms=-1 --set retention.bytes=-1 || true
done
# Ingest checkpoints and processor snapshots: only the latest per key
# matters. An hourly segment lets the cleaner compact them.
for t in dataset.ingest.checkpoints dataset.processor.snapshots; do
  rpk topic create "${PREFIX}$t" -p "$P" -r "$R" -c cleanup.policy=compact -c segment.ms=3600000 || true
done
