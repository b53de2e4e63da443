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
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
-- No foreign key: a flight may reference a customer that does not exist (yet).
CREATE TABLE IF NOT EXISTS flights (
    id           BIGINT PRIMARY KEY,
    customer_id  BIGINT NOT NULL,
    airport      TEXT,
    airline      TEXT,
    iata_code    TEXT,
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);
-- Deletes and updates carry the whole before image.
ALTER TABLE customers REPLICA IDENTITY FULL;
ALTER TABLE flights REPLICA IDENTITY FULL;
SELECT 'CREATE PUBLICATION cdc_chaos_crm FOR TABLE customers, flights'
 WHERE NOT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = 'cdc_chaos_crm') \gexec
