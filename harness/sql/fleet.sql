-- Source database "fleet" (MariaDB): vehicles. Idempotent: run at every `up`.
CREATE DATABASE IF NOT EXISTS fleet;
-- mariadb-install-db's anonymous users would shadow 'cdc'@'%' for local connections.
DROP USER IF EXISTS ''@'localhost';
DROP USER IF EXISTS ''@'%';
CREATE USER IF NOT EXISTS 'cdc'@'%' IDENTIFIED BY 'cdc';
CREATE USER IF NOT EXISTS 'cdc'@'localhost' IDENTIFIED BY 'cdc';
GRANT SELECT, INSERT, UPDATE, DELETE, RELOAD, SHOW DATABASES, LOCK TABLES, REPLICATION SLAVE, BINLOG MONITOR ON *.* TO 'cdc'@'%';
GRANT SELECT, INSERT, UPDATE, DELETE, RELOAD, SHOW DATABASES, LOCK TABLES, REPLICATION SLAVE, BINLOG MONITOR ON *.* TO 'cdc'@'localhost';
-- No foreign key: a vehicle may reference a customer of the other database.
CREATE TABLE IF NOT EXISTS fleet.vehicles (
    id            BIGINT PRIMARY KEY,
    customer_id   BIGINT NOT NULL,
    model_year    INT,
    model         VARCHAR(100),
    manufacturer  VARCHAR(100),
    vehicle_year  INT,
    category      VARCHAR(50),
    updated_at    TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    write_id      BIGINT
) ENGINE = InnoDB;
-- The operation of the harness's load that wrote the row last (run tag << 32 | operation index):
-- every change event names the operation that made it. Added to tables of older stacks.
ALTER TABLE fleet.vehicles ADD COLUMN IF NOT EXISTS write_id BIGINT;
