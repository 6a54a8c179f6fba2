-- 004: substring search without a scan: trigram GIN indexes (pg_trgm), which
-- ILIKE '%…%' uses for patterns of 3 characters or more. pg_trgm ships with
-- PostgreSQL and is a trusted extension (13+), so the database owner may
-- create it; where it cannot be had, search keeps working by scanning.
DO $$
BEGIN
    CREATE EXTENSION IF NOT EXISTS pg_trgm;
EXCEPTION WHEN OTHERS THEN
    RAISE NOTICE 'pg_trgm is not available (%): search will scan', SQLERRM;
END $$;

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm') THEN
        CREATE INDEX users_search_username ON users USING gin (username gin_trgm_ops);
        CREATE INDEX users_search_email ON users USING gin (email gin_trgm_ops);
        CREATE INDEX users_search_first_name ON users USING gin (first_name gin_trgm_ops);
        CREATE INDEX users_search_last_name ON users USING gin (last_name gin_trgm_ops);
    END IF;
END $$;
