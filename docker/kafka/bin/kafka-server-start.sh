#!/bin/bash
# A Kafka server (broker and/or controller): kafka-server-start.sh server.properties
export KAFKA_HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xmx1G -Xms1G}" KAFKA_LOG4J_FILE=log4j2.properties
exec "$(dirname "$0")/kafka-run-class.sh" kafka.Kafka "$@"
