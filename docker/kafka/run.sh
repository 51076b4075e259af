#!/bin/sh
# Runs a single-node Kafka in KRaft mode (one process, broker and
# controller) on loopback, logging to stdout. It is the default command of
# the rpcbench.local/kafka image, and what rpcbench's starters run
# (internal/broker/kafka.go): in the image, or straight from this directory
# with KAFKA_LIB pointing at lib/ (local-process source).
#
#   docker run --rm --network host rpcbench.local/kafka:4.4.0
#
# Settings (environment):
#   KAFKA_PORT       the PLAINTEXT listener clients use (9092)
#   CONTROLLER_PORT  the KRaft controller listener (9093)
#   DATA             run directory: server.properties, the log dir data/ (/tmp/kafka)
#   BIND             address the listeners bind (127.0.0.1; 0.0.0.0 behind
#                    published ports); the broker always advertises
#                    127.0.0.1:KAFKA_PORT
#   KAFKA_LIB        the jars (/opt/kafka/lib)
#   KAFKA_JAVA_OPTS  heap and GC flags (sized for a 2-core machine: 512 MB)
#   LOG_LEVEL        the broker's root log level (WARN; its "Kafka Server
#                    started" line is always logged: rpcbench waits for it)
# The storage is formatted on the first start, with a fresh cluster id kept
# in $DATA/cluster-id: a broker rpcbench starts never reuses another's log
# dir, and one started again after a fault run's kill or stop finds its
# own log (and cluster id) as it left them.
set -eu
KAFKA_PORT=${KAFKA_PORT:-9092}
CONTROLLER_PORT=${CONTROLLER_PORT:-9093}
DATA=${DATA:-/tmp/kafka}
BIND=${BIND:-127.0.0.1}
KAFKA_LIB=${KAFKA_LIB:-/opt/kafka/lib}
KAFKA_JAVA_OPTS=${KAFKA_JAVA_OPTS:--Xms512m -Xmx512m -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true}
LOG_LEVEL=${LOG_LEVEL:-WARN}
mkdir -p "$DATA/data"
cat >"$DATA/server.properties" <<CONF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$CONTROLLER_PORT
listeners=PLAINTEXT://$BIND:$KAFKA_PORT,CONTROLLER://$BIND:$CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs=$DATA/data
num.partitions=1
auto.create.topics.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
min.insync.replicas=1
group.initial.rebalance.delay.ms=0
# Kafka's defaults: no fsync per message (the sync-flush variant sets
# flush.messages=1 on its own topics), a 1 MiB message limit.
CONF
cat >"$DATA/log4j2.properties" <<CONF
status = warn
appender.out.type = Console
appender.out.name = out
appender.out.target = SYSTEM_OUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = $LOG_LEVEL
rootLogger.appenderRef.out.ref = out
logger.ready.name = kafka.server.KafkaRaftServer
logger.ready.level = INFO
logger.version.name = org.apache.kafka.common.utils.internals.AppInfoParser
logger.version.level = INFO
CONF
JAVA_LOG="-Dlog4j2.configurationFile=$DATA/log4j2.properties"
echo "rpcbench-jvm: $(java -version 2>&1 | head -n 1)"
echo "rpcbench-broker-opts: $KAFKA_JAVA_OPTS"
# shellcheck disable=SC2086
if [ ! -s "$DATA/cluster-id" ]; then
  java $JAVA_LOG -cp "$KAFKA_LIB/*" kafka.tools.StorageTool random-uuid >"$DATA/cluster-id.tmp"
  mv "$DATA/cluster-id.tmp" "$DATA/cluster-id"
fi
# shellcheck disable=SC2086
java $JAVA_LOG -cp "$KAFKA_LIB/*" kafka.tools.StorageTool format \
  -t "$(cat "$DATA/cluster-id")" -c "$DATA/server.properties" --ignore-formatted
# shellcheck disable=SC2086
exec java $KAFKA_JAVA_OPTS $JAVA_LOG -cp "$KAFKA_LIB/*" kafka.Kafka "$DATA/server.properties"
