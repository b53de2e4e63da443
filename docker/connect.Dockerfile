# Kafka Connect with the Debezium PostgreSQL and MariaDB connectors: the Kafka image plus the
# plugin directories the Maven project in java/ resolves (the harness puts them into the
# context's plugins/), at the plugin.path the worker configuration names.
ARG BASE=cdc-chaos/kafka:4.3.1
FROM ${BASE}
COPY plugins/ /opt/connect/plugins/
