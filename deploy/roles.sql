-- The shared store's database and its two roles. Run once, as a superuser (or a role with
-- CREATEROLE and CREATEDB):  psql -v ON_ERROR_STOP=1 -f deploy/roles.sql
-- Change both passwords first (or set them later: ALTER ROLE ... PASSWORD '...').

-- The scheduled jobs (ingest, prices fetch/import) write as the owner of the database:
-- the first write creates the tables.
CREATE ROLE dashboard_writer LOGIN PASSWORD 'change-me-writer';
-- Every app process reads as a role that can only read.
CREATE ROLE dashboard_reader LOGIN PASSWORD 'change-me-reader';
CREATE DATABASE news OWNER dashboard_writer;

\connect news
-- Nobody else may use the schema; the reader may read every table the writer makes, now and
-- later (the default privileges), and nothing more. Its transactions are read-only as well.
REVOKE ALL ON SCHEMA public FROM PUBLIC;
GRANT USAGE, CREATE ON SCHEMA public TO dashboard_writer;
GRANT USAGE ON SCHEMA public TO dashboard_reader;
GRANT CONNECT ON DATABASE news TO dashboard_reader;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO dashboard_reader;
ALTER DEFAULT PRIVILEGES FOR ROLE dashboard_writer IN SCHEMA public GRANT SELECT ON TABLES TO dashboard_reader;
ALTER ROLE dashboard_reader SET default_transaction_read_only = on;
