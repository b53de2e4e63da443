# MariaDB 10.11 from Debian, with the parts of the official image's entrypoint the manifests use:
# MARIADB_ROOT_PASSWORD, MARIADB_DATABASE, MARIADB_USER, MARIADB_PASSWORD,
# /docker-entrypoint-initdb.d. It listens on every address, as the official image does.
ARG BASE=cdc-chaos/debian:bookworm
FROM ${BASE}
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends mariadb-server \
    && rm -rf /var/lib/apt/lists/* /var/lib/mysql/* \
    && sed -i 's/^bind-address/#bind-address/' /etc/mysql/mariadb.conf.d/50-server.cnf \
    && mkdir -p /docker-entrypoint-initdb.d /run/mysqld \
    && chown mysql:mysql /run/mysqld
COPY mariadb/docker-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
RUN chmod 0755 /usr/local/bin/docker-entrypoint.sh
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["mariadbd"]
EXPOSE 3306
