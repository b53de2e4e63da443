# SeaweedFS (the lake's S3 server): the `weed` binary the local platform builds from the Go
# module proxy (the harness puts it into the context's bin/).
ARG BASE=cdc-chaos/debian:bookworm
FROM ${BASE}
COPY bin/weed /usr/bin/weed
RUN chmod 0755 /usr/bin/weed && mkdir -p /data
EXPOSE 9000
