-- The review corpus: migrations over the suite's `reviewed` database (sandbox/sql/skyfire.sql and
-- review.sql). tests/test_review_oracle.py reviews each one from the refreshed files, applies it
-- to a scratch copy of the database on PostgreSQL 15 and 18, and compares. One migration per
-- `-- migration:` line; its statements follow, one per line.

-- migration: add_column_nullable
ALTER TABLE customers ADD COLUMN nickname text;
-- migration: add_column_constant_default
ALTER TABLE customers ADD COLUMN vip boolean NOT NULL DEFAULT false;
-- migration: add_column_volatile_default
ALTER TABLE customers ADD COLUMN token uuid DEFAULT gen_random_uuid();
-- migration: add_column_clock_default_on_big_table
ALTER TABLE utility_rates ADD COLUMN loaded_at timestamptz DEFAULT clock_timestamp();
-- migration: add_column_stable_default
ALTER TABLE utility_rates ADD COLUMN seen_at timestamptz NOT NULL DEFAULT now();
-- migration: add_column_exists
ALTER TABLE invoices ADD COLUMN tax_cents bigint;
-- migration: add_column_if_not_exists
ALTER TABLE invoices ADD COLUMN IF NOT EXISTS tax_cents bigint;
-- migration: add_column_not_null_on_rows
ALTER TABLE utility_rates ADD COLUMN region text NOT NULL;
-- migration: add_column_serial
ALTER TABLE permits ADD COLUMN seq serial;
-- migration: add_column_identity
ALTER TABLE permits ADD COLUMN n bigint GENERATED ALWAYS AS IDENTITY;
-- migration: add_column_stored_generated
ALTER TABLE tickets ADD COLUMN title_length integer GENERATED ALWAYS AS (length(title)) STORED;
-- migration: add_column_domain
ALTER TABLE payments ADD COLUMN fee positive_cents;
-- migration: drop_column_used_by_views
ALTER TABLE solar_projects DROP COLUMN status;
-- migration: drop_column_used_by_views_cascade
ALTER TABLE solar_projects DROP COLUMN status CASCADE;
-- migration: drop_column_referenced_by_foreign_keys
ALTER TABLE users DROP COLUMN id;
-- migration: drop_column_used_by_policy
ALTER TABLE customers DROP COLUMN company_id;
-- migration: drop_column_used_by_generated_column
ALTER TABLE invoices DROP COLUMN tax_cents;
-- migration: drop_column_in_trigger_columns
ALTER TABLE installations DROP COLUMN scheduled_for;
-- migration: drop_column_used_by_atomic_function
ALTER TABLE customers DROP COLUMN email;
-- migration: drop_column_indexed
ALTER TABLE utility_rates DROP COLUMN zip_code;
-- migration: drop_column_named_by_trigger_function
ALTER TABLE payments DROP COLUMN amount_cents;
-- migration: drop_table_with_dependents
DROP TABLE customers;
-- migration: drop_table_cascade
DROP TABLE customers CASCADE;
-- migration: drop_table_with_child
DROP TABLE payments;
-- migration: drop_partitioned_table
DROP TABLE production_readings;
-- migration: drop_leaf_table
DROP TABLE site_photos;
-- migration: drop_view_with_dependent_view
DROP VIEW open_projects;
-- migration: drop_type_in_use
DROP TYPE project_status;
-- migration: drop_trigger_function
DROP FUNCTION touch_updated_at();
-- migration: drop_sequence_in_default
DROP SEQUENCE ticket_number_seq;
-- migration: drop_missing_table
DROP TABLE nowhere;
-- migration: drop_missing_table_if_exists
DROP TABLE IF EXISTS nowhere;
-- migration: rename_column_named_by_trigger_function
ALTER TABLE payments RENAME COLUMN amount_cents TO amount;
-- migration: rename_column_named_by_sql_function
ALTER TABLE solar_projects RENAME COLUMN company_id TO org_id;
-- migration: rename_column_named_by_plpgsql
ALTER TABLE invoices RENAME COLUMN tax_cents TO tax;
-- migration: rename_table_named_by_plpgsql
ALTER TABLE invoices RENAME TO bills;
-- migration: rename_column_atomic_body_follows
ALTER TABLE customers RENAME COLUMN email TO email_address;
-- migration: rename_column_to_existing
ALTER TABLE customers RENAME COLUMN phone TO email;
-- migration: alter_type_used_by_view
ALTER TABLE solar_projects ALTER COLUMN status TYPE text;
-- migration: alter_type_used_by_policy
ALTER TABLE customers ALTER COLUMN company_id TYPE bigint;
-- migration: alter_type_used_by_generated_column
ALTER TABLE invoices ALTER COLUMN tax_cents TYPE numeric;
-- migration: alter_type_in_trigger_when
ALTER TABLE installations ALTER COLUMN completed_at TYPE timestamp;
-- migration: alter_type_varchar_widen
ALTER TABLE tickets ALTER COLUMN title TYPE varchar(200);
-- migration: alter_type_varchar_to_text
ALTER TABLE tickets ALTER COLUMN title TYPE text;
-- migration: alter_type_varchar_narrow
ALTER TABLE tickets ALTER COLUMN title TYPE varchar(40);
-- migration: alter_type_smallint_to_integer
ALTER TABLE tickets ALTER COLUMN priority TYPE integer;
-- migration: alter_type_numeric_widen
ALTER TABLE utility_rates ALTER COLUMN cents_per_kwh TYPE numeric(8,3);
-- migration: alter_type_using
ALTER TABLE tickets ALTER COLUMN body TYPE varchar(500) USING left(body, 500);
-- migration: set_not_null_scans
ALTER TABLE customers ALTER COLUMN phone SET NOT NULL;
-- migration: set_not_null_after_valid_check
ALTER TABLE customers ADD CONSTRAINT customers_phone_present CHECK (phone IS NOT NULL) NOT VALID;
ALTER TABLE customers VALIDATE CONSTRAINT customers_phone_present;
ALTER TABLE customers ALTER COLUMN phone SET NOT NULL;
-- migration: drop_not_null_primary_key
ALTER TABLE customers ALTER COLUMN id DROP NOT NULL;
-- migration: set_default
ALTER TABLE tickets ALTER COLUMN priority SET DEFAULT 1;
-- migration: foreign_key_validated
ALTER TABLE site_photos ADD COLUMN installer_id integer;
ALTER TABLE site_photos ADD CONSTRAINT site_photos_installer_fk FOREIGN KEY (installer_id) REFERENCES users(id);
-- migration: foreign_key_not_valid_then_validate
ALTER TABLE site_photos ADD COLUMN installer_id integer;
ALTER TABLE site_photos ADD CONSTRAINT site_photos_installer_fk FOREIGN KEY (installer_id) REFERENCES users(id) NOT VALID;
ALTER TABLE site_photos VALIDATE CONSTRAINT site_photos_installer_fk;
-- migration: foreign_key_without_unique_target
ALTER TABLE tickets ADD CONSTRAINT tickets_title_fk FOREIGN KEY (title) REFERENCES customers(name);
-- migration: foreign_key_to_missing_table
ALTER TABLE tickets ADD CONSTRAINT tickets_owner_fk FOREIGN KEY (project_id) REFERENCES nowhere(id);
-- migration: check_validated
ALTER TABLE utility_rates ADD CONSTRAINT utility_rates_positive CHECK (cents_per_kwh > 0);
-- migration: check_not_valid
ALTER TABLE utility_rates ADD CONSTRAINT utility_rates_positive CHECK (cents_per_kwh > 0) NOT VALID;
-- migration: check_name_taken
ALTER TABLE invoices ADD CONSTRAINT invoices_paid_after_issue CHECK (paid_at IS NOT NULL);
-- migration: create_index
CREATE INDEX customers_phone_idx ON customers (phone);
-- migration: create_index_concurrently
CREATE INDEX CONCURRENTLY customers_phone_idx ON customers (phone);
-- migration: create_index_name_taken
CREATE INDEX users_company_id_idx ON users (email);
-- migration: create_index_missing_column
CREATE INDEX tickets_missing_idx ON tickets (nothing_here);
-- migration: drop_index
DROP INDEX utility_rates_zip_idx;
-- migration: drop_index_of_primary_key
DROP INDEX company_pkey;
-- migration: drop_primary_key_referenced
ALTER TABLE company DROP CONSTRAINT company_pkey;
-- migration: drop_constraint_missing
ALTER TABLE company DROP CONSTRAINT no_such_constraint;
-- migration: drop_foreign_key
ALTER TABLE payments DROP CONSTRAINT payments_invoice_id_fkey;
-- migration: create_table_exists
CREATE TABLE users (id integer);
-- migration: create_table_with_foreign_key
CREATE TABLE customer_notes (id serial PRIMARY KEY, customer_id bigint NOT NULL REFERENCES customers(id), note text);
-- migration: enum_add_value
ALTER TYPE project_status ADD VALUE 'archived';
-- migration: enum_add_existing_value
ALTER TYPE project_status ADD VALUE 'lead';
-- migration: truncate_referenced
TRUNCATE company;
-- migration: truncate_leaf
TRUNCATE site_photos;
-- migration: replace_view_dropping_a_column
CREATE OR REPLACE VIEW open_projects AS SELECT p.id FROM solar_projects p;
-- migration: row_security_and_policy
ALTER TABLE permits ENABLE ROW LEVEL SECURITY;
CREATE POLICY permits_by_jurisdiction ON permits USING (jurisdiction = current_setting('app.jurisdiction', true));
-- migration: alter_missing_table
ALTER TABLE nowhere ADD COLUMN x integer;
-- migration: a_release
ALTER TABLE tickets ADD COLUMN status text;
UPDATE tickets SET status = 'open';
ALTER TABLE tickets ALTER COLUMN status SET NOT NULL;
CREATE INDEX tickets_status_idx ON tickets (status);
ALTER TABLE tickets ALTER COLUMN status SET DEFAULT 'open';
-- migration: create_partition
CREATE TABLE production_readings_2026_12 PARTITION OF production_readings FOR VALUES FROM ('2026-12-01') TO ('2027-01-01');
-- migration: create_inheriting_table
CREATE TABLE old_payments (note text) INHERITS (payments);
-- migration: create_sql_function_and_view
CREATE FUNCTION open_count() RETURNS bigint LANGUAGE sql STABLE AS $$ SELECT count(*) FROM open_projects $$;
CREATE VIEW big_invoices AS SELECT id, amount_cents FROM invoices WHERE amount_cents > 100000;
-- migration: drop_view_used_by_new_function
CREATE FUNCTION open_count() RETURNS bigint LANGUAGE sql STABLE AS $$ SELECT count(*) FROM open_project_customers $$;
DROP VIEW open_project_customers;
-- migration: drop_materialized_view
DROP MATERIALIZED VIEW company_project_counts;
-- migration: detach_partition
ALTER TABLE production_readings DETACH PARTITION production_readings_2026_10;
