# Kafka Connect for the kind platform: the official Apache Kafka 4.3.1 image with the Debezium
# PostgreSQL and MariaDB connectors on its plugin path (/opt/connect/plugins). The plugin jars
# come from Maven Central through the Maven project the local platform uses (java/), so both
# platforms run the same connector versions (java/pom.xml: debezium.postgres.version,
# debezium.mariadb.version).
#   docker build -f docker/connect.Dockerfile -t cdc-chaos/connect:dev .
FROM maven:3.9-eclipse-temurin-17 AS plugins
WORKDIR /src
COPY java/ java/
# Each connector module copies its runtime closure to ${cdc.lib}/plugins/<connector>/.
RUN mvn -B -q -f java/pom.xml -pl debezium-postgres,debezium-mariadb -am package -Dcdc.lib=/out

FROM apache/kafka:4.3.1
COPY --from=plugins /out/plugins /opt/connect/plugins
