# The pipeline for the kind platform: the `cdc-chaos` binary of this workspace, whose
# `cdc-chaos pipeline join|warehouse|lake` runs the join and the sinks (manifests/base/processing).
# It is also the Kafka pods' `netfault` container, which adds and removes the iptables rules of
# partition faults (hence iptables).
#   docker build -f docker/pipeline.Dockerfile -t cdc-chaos/pipeline:dev .
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p cdc-chaos

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates zlib1g iptables \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/cdc-chaos /usr/local/bin/cdc-chaos
USER 65532:65532
CMD ["cdc-chaos", "--help"]
