#!/bin/bash
# A Kafka Connect worker in distributed mode: connect-distributed.sh worker.properties
export KAFKA_HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xms256M -Xmx2G}" KAFKA_LOG4J_FILE=log4j2.properties
exec "$(dirname "$0")/kafka-run-class.sh" org.apache.kafka.connect.cli.ConnectDistributed "$@"
