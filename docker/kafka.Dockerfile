# Apache Kafka 4.3.1 from its Maven Central jars (the ones the local platform runs), laid out as
# the distribution is: /opt/kafka/libs, /opt/kafka/bin/*.sh, /opt/kafka/config. The harness puts
# the jars into the context's libs/.
ARG BASE=cdc-chaos/debian:bookworm
FROM ${BASE}
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends openjdk-17-jre-headless procps \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 1000 --home-dir /opt/kafka --shell /bin/bash appuser
COPY libs/ /opt/kafka/libs/
COPY kafka/bin/ /opt/kafka/bin/
COPY kafka/config/ /opt/kafka/config/
RUN chmod 0755 /opt/kafka/bin/*.sh
ENV PATH=/opt/kafka/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
USER appuser
WORKDIR /opt/kafka
