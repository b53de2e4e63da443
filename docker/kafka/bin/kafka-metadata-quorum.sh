#!/bin/bash
# The KRaft quorum's status and replication (which node is the active controller)
exec "$(dirname "$0")/kafka-run-class.sh" org.apache.kafka.tools.MetadataQuorumCommand "$@"
