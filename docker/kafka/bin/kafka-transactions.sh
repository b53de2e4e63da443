#!/bin/bash
# Describes transactions (which node coordinates a transactional id)
exec "$(dirname "$0")/kafka-run-class.sh" org.apache.kafka.tools.TransactionsCommand "$@"
