#!/bin/bash
# The official image's entrypoint, reduced to what the manifests use: as root, own the data
# directory and drop to mysql; on an empty data directory, install the system tables, start a
# server without networking (with the arguments given, so the binlog settings apply), set
# MARIADB_ROOT_PASSWORD for root@localhost and root@'%', create MARIADB_DATABASE and
# MARIADB_USER with all privileges on it, run /docker-entrypoint-initdb.d/* (*.sql into
# MARIADB_DATABASE, *.sh sourced), stop it; then the server with the arguments given.
set -euo pipefail
datadir=/var/lib/mysql
socket=/run/mysqld/mysqld.sock
if [ "${1:0:1}" = "-" ]; then
  set -- mariadbd "$@"
fi
if [ "$(id -u)" = 0 ]; then
  mkdir -p "$datadir" /run/mysqld
  chown -R mysql:mysql "$datadir" /run/mysqld
  exec setpriv --reuid=mysql --regid=mysql --init-groups "$0" "$@"
fi
sql_string() { local v="${1//\\/\\\\}"; printf "'%s'" "${v//\'/\'\'}"; }
if [ "$1" = mariadbd ] && [ ! -d "$datadir/mysql" ]; then
  if [ -z "${MARIADB_ROOT_PASSWORD:-}" ]; then
    echo "docker-entrypoint.sh: MARIADB_ROOT_PASSWORD is empty: set it (the Secret's key)" >&2
    exit 1
  fi
  mariadb-install-db --datadir="$datadir" --auth-root-authentication-method=normal --skip-test-db --skip-name-resolve > /dev/null
  shift
  mariadbd --datadir="$datadir" --skip-networking --socket="$socket" "$@" &
  pid=$!
  for _ in $(seq 1 60); do
    if mariadb-admin --socket="$socket" -uroot ping > /dev/null 2>&1; then break; fi
    sleep 1
  done
  root=$(sql_string "$MARIADB_ROOT_PASSWORD")
  {
    echo "SET @@SESSION.SQL_LOG_BIN=0;"
    echo "DELETE FROM mysql.user WHERE user = '';"
    echo "ALTER USER 'root'@'localhost' IDENTIFIED BY $root;"
    echo "CREATE USER 'root'@'%' IDENTIFIED BY $root;"
    echo "GRANT ALL ON *.* TO 'root'@'%' WITH GRANT OPTION;"
    if [ -n "${MARIADB_DATABASE:-}" ]; then
      echo "CREATE DATABASE IF NOT EXISTS \`${MARIADB_DATABASE}\`;"
    fi
    if [ -n "${MARIADB_USER:-}" ]; then
      echo "CREATE USER '${MARIADB_USER}'@'%' IDENTIFIED BY $(sql_string "${MARIADB_PASSWORD:-}");"
      if [ -n "${MARIADB_DATABASE:-}" ]; then
        echo "GRANT ALL ON \`${MARIADB_DATABASE}\`.* TO '${MARIADB_USER}'@'%';"
      fi
    fi
    echo "FLUSH PRIVILEGES;"
  } | mariadb --socket="$socket" -uroot
  export MYSQL_PWD="$MARIADB_ROOT_PASSWORD"
  for f in /docker-entrypoint-initdb.d/*; do
    case "$f" in
      *.sql) echo "running $f"; mariadb --socket="$socket" -uroot ${MARIADB_DATABASE:+"$MARIADB_DATABASE"} < "$f" ;;
      *.sh) echo "sourcing $f"; . "$f" ;;
      *) [ -e "$f" ] && echo "ignoring $f" ;;
    esac
  done
  unset MYSQL_PWD
  kill "$pid"
  wait "$pid" || true
  set -- mariadbd "$@"
fi
exec "$@"
