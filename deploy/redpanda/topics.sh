#!/usr/bin/env bash
# Creates the pipeline's topics on a Redpanda cluster with rpk. The services
# also create missing topics at start (kadm); this script is for operators
# who manage topics explicitly. Usage: topics.sh [partitions] [replicas]
set -euo pipefail
P=${1:-6}
R=${2:-1}
PREFIX=${KAFKA_TOPIC_PREFIX:-}
for t in dataset.commands dataset.events dataset.records.raw dataset.records.staged; do
  rpk topic create "${PREFIX}$t" -p "$P" -r "$R" || true
done
# The event log is the audit trail: keep it forever.
rpk topic alter-config "${PREFIX}dataset.events" --set retention.ms=-1 || true
# Ingest checkpoints: only the latest per execution matters.
rpk topic create "${PREFIX}dataset.ingest.checkpoints" -p "$P" -r "$R" -c cleanup.policy=compact || true
