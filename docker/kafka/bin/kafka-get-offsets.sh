#!/bin/bash
# The offsets of a topic's partitions
exec "$(dirname "$0")/kafka-run-class.sh" org.apache.kafka.tools.GetOffsetShell "$@"
