# The pipeline (join, warehouse sink, lake sink) and the netfault sidecar of the Kafka pods: the
# harness's own binary (the harness puts it into the context's bin/), with iptables for the
# sidecar's partitions.
ARG BASE=cdc-chaos/debian:bookworm
FROM ${BASE}
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ca-certificates zlib1g iptables \
    && rm -rf /var/lib/apt/lists/*
COPY bin/cdc-chaos /usr/local/bin/cdc-chaos
USER 65532:65532
CMD ["cdc-chaos", "--help"]
