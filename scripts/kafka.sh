#!/usr/bin/env bash
# Runs a real Apache Kafka broker (single node, KRaft broker+controller,
# transactions enabled) on loopback for tests, installing it from Maven
# Central with `mvn dependency:copy-dependencies` into a cache directory.
# Idempotent like scripts/pg.sh: `start` reuses a broker this checkout
# started. Prints the environment the tests read, for eval:
#   eval "$(scripts/kafka.sh start)"
# and the services run on it with KAFKA_BROKERS=$(scripts/kafka.sh url).
# Usage: scripts/kafka.sh start|stop|kill|url|version
set -euo pipefail
cmd=${1:-start}
root=$(cd "$(dirname "$0")/.." && pwd)
version=${DSPIPE_KAFKA_VERSION:-3.9.1}
cache=${DSPIPE_KAFKA_CACHE:-$HOME/.cache/dspipe-kafka/$version}
data=${DSPIPE_KAFKA_DATA:-$root/.kafka}
port=${DSPIPE_KAFKA_PORT:-$(cat "$data/port" 2>/dev/null || echo 29092)}
cport=$((port + 1))
url="127.0.0.1:$port"

up() { (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; }
mine() { [ -f "$data/pid" ] && kill -0 "$(cat "$data/pid")" 2>/dev/null; }

install() {
  [ -f "$cache/.complete" ] && return 0
  mkdir -p "$cache"
  cat > "$cache/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>dspipe</groupId><artifactId>kafka-runtime</artifactId><version>1</version>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>$version</version></dependency>
    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-reload4j</artifactId><version>1.7.36</version></dependency>
  </dependencies>
</project>
POM
  (cd "$cache" && mvn -q dependency:copy-dependencies -DoutputDirectory=lib >&2)
  touch "$cache/.complete"
}

config() {
  mkdir -p "$data/log"
  cat > "$data/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs=$data/log
num.partitions=3
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
min.insync.replicas=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
message.max.bytes=8388608
PROPS
  echo "log4j.rootLogger=WARN, stderr
log4j.appender.stderr=org.apache.log4j.ConsoleAppender
log4j.appender.stderr.Target=System.err
log4j.appender.stderr.layout=org.apache.log4j.PatternLayout
log4j.appender.stderr.layout.ConversionPattern=[%d] %p %m (%c)%n" > "$data/log4j.properties"
}

env_out() { echo "export DSPIPE_TEST_KAFKA_BROKERS=$url"; echo "export DSPIPE_TEST_KAFKA_VERSION=$version"; }

case "$cmd" in
url) echo "$url" ;;
version) echo "$version" ;;
env) env_out ;;
stop)
  if mine; then kill "$(cat "$data/pid")" 2>/dev/null || true; for _ in $(seq 100); do mine || break; sleep 0.2; done; fi
  rm -f "$data/pid" ;;
kill)
  if mine; then kill -9 "$(cat "$data/pid")" 2>/dev/null || true; for _ in $(seq 50); do mine || break; sleep 0.1; done; fi
  rm -f "$data/pid" ;;
start)
  if mine && up; then env_out; exit 0; fi
  # A broker of another checkout (or anything else) on the port: take the
  # next free pair of ports.
  for _ in $(seq 20); do
    up || (exec 3<>"/dev/tcp/127.0.0.1/$cport") 2>/dev/null || break
    port=$((port + 2)); cport=$((port + 1)); url="127.0.0.1:$port"
  done
  mkdir -p "$data"
  echo "$port" > "$data/port"
  install
  config
  if [ ! -f "$data/log/meta.properties" ]; then
    java -cp "$cache/lib/*" -Dlog4j.configuration="file:$data/log4j.properties" kafka.tools.StorageTool format \
      -t "$(cat /proc/sys/kernel/random/uuid | tr -d - | head -c 22)" -c "$data/server.properties" >&2
  fi
  nohup java -Xmx1g -cp "$cache/lib/*" -Dlog4j.configuration="file:$data/log4j.properties" kafka.Kafka "$data/server.properties" \
    >"$data/broker.log" 2>&1 &
  echo $! > "$data/pid"
  # A restart after a SIGKILL waits out the old registration (about 20 s).
  for _ in $(seq 600); do
    if up; then env_out; exit 0; fi
    mine || { echo "kafka exited; see $data/broker.log" >&2; tail -20 "$data/broker.log" >&2; exit 1; }
    sleep 0.1
  done
  echo "kafka did not listen on $port within 60 s" >&2; exit 1 ;;
*) echo "usage: $0 start|stop|kill|url|env|version" >&2; exit 2 ;;
esac
