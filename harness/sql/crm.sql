-- Source database "crm" (PostgreSQL): customers and flights. Idempotent: run at every `up`.
SELECT 'CREATE ROLE cdc LOGIN REPLICATION PASSWORD ''cdc'''
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'cdc') \gexec
SELECT 'CREATE DATABASE crm OWNER cdc'
 WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'crm') \gexec
\connect crm
SET ROLE cdc;
CREATE TABLE IF NOT EXISTS customers (
    id          BIGINT PRIMARY KEY,
    name        TEXT NOT NULL,
    gender      TEXT,
    address     TEXT,
    phone       TEXT,
    email       TEXT,
    birth_date  DATE,
    profession  TEXT,
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    write_id    BIGINT
);
-- No foreign key: a flight may reference a customer that does not exist (yet).
CREATE TABLE IF NOT EXISTS flights (
    id           BIGINT PRIMARY KEY,
    customer_id  BIGINT NOT NULL,
    airport      TEXT,
    airline      TEXT,
    iata_code    TEXT,
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    write_id     BIGINT
);
-- The operation of the harness's load that wrote the row last (run tag << 32 | operation index):
-- every change event names the operation that made it. Added to tables of older stacks.
ALTER TABLE customers ADD COLUMN IF NOT EXISTS write_id BIGINT;
ALTER TABLE flights ADD COLUMN IF NOT EXISTS write_id BIGINT;
-- Deletes and updates carry the whole before image.
ALTER TABLE customers REPLICA IDENTITY FULL;
ALTER TABLE flights REPLICA IDENTITY FULL;
SELECT 'CREATE PUBLICATION cdc_chaos_crm FOR TABLE customers, flights'
 WHERE NOT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = 'cdc_chaos_crm') \gexec
