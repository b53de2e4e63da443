#!/bin/bash
# The API versions each broker supports (a liveness check)
exec "$(dirname "$0")/kafka-run-class.sh" org.apache.kafka.tools.BrokerApiVersionsCommand "$@"
