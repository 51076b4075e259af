#!/bin/sh
# Runs a single-node RocketMQ on loopback: the name server in the background
# and the broker in the foreground (exec), both logging to stdout. It is the
# default command of the rpcbench.local/rocketmq image, and what rpcbench's
# starters run (internal/broker/rocketmq.go): in the image, or straight from
# this directory with ROCKETMQ_LIB pointing at lib/ (local-process source).
#
#   docker run --rm --network host rpcbench.local/rocketmq:5.3.3
#
# Settings (environment):
#   NAMESRV_PORT  name server port (9876)
#   BROKER_PORT   broker listenPort (10911); the broker also binds
#                 BROKER_PORT-2 (fast/VIP channel) and BROKER_PORT+1 (HA)
#   FLUSH         flushDiskType: ASYNC_FLUSH (default) or SYNC_FLUSH
#   DATA          run directory: configs, store, logs (/tmp/rocketmq)
#   BIND          address the name server and broker listen on (127.0.0.1;
#                 0.0.0.0 behind published ports); the broker always
#                 advertises 127.0.0.1 (brokerIP1)
#   ROCKETMQ_LIB  the jars (/opt/rocketmq/lib)
#   NAMESRV_JAVA_OPTS, BROKER_JAVA_OPTS  heap and GC flags (sized for a
#                 2-core machine: 256 MB name server, 1 GB broker heap)
set -eu
NAMESRV_PORT=${NAMESRV_PORT:-9876}
BROKER_PORT=${BROKER_PORT:-10911}
FLUSH=${FLUSH:-ASYNC_FLUSH}
DATA=${DATA:-/tmp/rocketmq}
BIND=${BIND:-127.0.0.1}
ROCKETMQ_LIB=${ROCKETMQ_LIB:-/opt/rocketmq/lib}
NAMESRV_JAVA_OPTS=${NAMESRV_JAVA_OPTS:--Xms256m -Xmx256m -XX:+UseG1GC}
BROKER_JAVA_OPTS=${BROKER_JAVA_OPTS:--Xms1g -Xmx1g -XX:MaxDirectMemorySize=1g -XX:+UseG1GC}
case "$FLUSH" in ASYNC_FLUSH|SYNC_FLUSH) ;; *) echo "run.sh: FLUSH=$FLUSH: want ASYNC_FLUSH or SYNC_FLUSH" >&2; exit 2 ;; esac
mkdir -p "$DATA"
cat >"$DATA/namesrv.conf" <<CONF
listenPort=$NAMESRV_PORT
bindAddress=$BIND
CONF
cat >"$DATA/broker.conf" <<CONF
brokerClusterName=DefaultCluster
brokerName=broker-a
brokerId=0
brokerRole=ASYNC_MASTER
flushDiskType=$FLUSH
namesrvAddr=127.0.0.1:$NAMESRV_PORT
brokerIP1=127.0.0.1
bindAddress=$BIND
listenPort=$BROKER_PORT
storePathRootDir=$DATA/store
storePathCommitLog=$DATA/store/commitlog
autoCreateTopicEnable=true
mappedFileSizeCommitLog=134217728
# A 2-core machine shared with the load generator: let a send wait in the
# broker's queue up to 3 s (default 200 ms) before it is refused as
# "[TIMEOUT_CLEAN_QUEUE] broker busy", and the commit log lock 5 s (default
# 1 s, "[PC_SYNCHRONIZED]"); a refused request would surface only as a
# caller timeout (rocketmq-client-go hides async send errors).
waitTimeMillsInSendQueue=3000
osPageCacheBusyTimeOutMills=5000
CONF
# JDK 17 module flags RocketMQ needs (apache/rocketmq #9887, #10612).
JDK17="--add-opens java.base/java.lang=ALL-UNNAMED --add-opens java.base/java.nio=ALL-UNNAMED --add-opens java.base/java.util=ALL-UNNAMED --add-opens java.base/jdk.internal.ref=ALL-UNNAMED --add-exports java.base/sun.nio.ch=ALL-UNNAMED"
# Keep logback's own status lines (hundreds, from the configs in the jars)
# off stdout, so that the broker's last log lines say something.
JDK17="$JDK17 -Dlogback.statusListenerClass=org.apache.rocketmq.logging.ch.qos.logback.core.status.NopStatusListener"
export ROCKETMQ_HOME="$DATA"
echo "rpcbench-jvm: $(java -version 2>&1 | head -n 1)"
echo "rpcbench-namesrv-opts: $NAMESRV_JAVA_OPTS"
echo "rpcbench-broker-opts: $BROKER_JAVA_OPTS"
# The name server dies with the broker (its parent once this script execs
# the broker): no orphan when the broker is killed.
PDEATH=
if command -v setpriv >/dev/null 2>&1; then PDEATH="setpriv --pdeathsig KILL"; fi
# shellcheck disable=SC2086
$PDEATH java $NAMESRV_JAVA_OPTS $JDK17 -Duser.home="$DATA" -cp "$ROCKETMQ_LIB/*" \
  org.apache.rocketmq.namesrv.NamesrvStartup -c "$DATA/namesrv.conf" &
# shellcheck disable=SC2086
exec java $BROKER_JAVA_OPTS $JDK17 -Duser.home="$DATA" -cp "$ROCKETMQ_LIB/*" \
  org.apache.rocketmq.broker.BrokerStartup -c "$DATA/broker.conf"
