-- Added to the demo's schema (skyfire.sql) for the review corpus (tests/test_review_oracle.py):
-- the kinds of dependents a migration can break that the demo lacks. Bodies, policies, generated
-- columns, inheritance, a materialized view, a view on a view, and a few rows so sizes differ.
ALTER TABLE invoices ADD COLUMN tax_cents bigint NOT NULL DEFAULT 0;
ALTER TABLE invoices ADD COLUMN total_cents bigint GENERATED ALWAYS AS (amount_cents + tax_cents) STORED;
ALTER TABLE invoices ADD CONSTRAINT invoices_paid_after_issue CHECK (paid_at IS NULL OR paid_at >= issued_at);

CREATE MATERIALIZED VIEW company_project_counts AS
    SELECT company_id, count(*) AS projects FROM solar_projects GROUP BY company_id;
CREATE VIEW open_project_customers AS SELECT id, customer_name FROM open_projects;

CREATE FUNCTION project_count(company integer) RETURNS bigint LANGUAGE sql STABLE AS $$
    SELECT count(*) FROM solar_projects WHERE company_id = company
$$;
CREATE FUNCTION customer_email(customer bigint) RETURNS text LANGUAGE sql STABLE
BEGIN ATOMIC
    SELECT email FROM customers WHERE id = customer;
END;
CREATE FUNCTION invoice_total(invoice integer) RETURNS bigint LANGUAGE plpgsql STABLE AS $$
DECLARE
    total bigint;
BEGIN
    SELECT i.amount_cents + i.tax_cents INTO total FROM invoices i WHERE i.id = invoice;
    RETURN total;
END
$$;
CREATE FUNCTION log_payment() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO audit_log (action, payload)
    VALUES ('payment', jsonb_build_object('invoice', NEW.invoice_id, 'amount', NEW.amount_cents));
    RETURN NEW;
END
$$;
CREATE TRIGGER payments_log AFTER INSERT ON payments FOR EACH ROW EXECUTE FUNCTION log_payment();
CREATE FUNCTION purge(target text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('DELETE FROM %I', target);
END
$$;
CREATE FUNCTION note_schedule() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RETURN NEW;
END
$$;
CREATE TRIGGER installations_schedule BEFORE UPDATE OF scheduled_for ON installations
    FOR EACH ROW WHEN (NEW.completed_at IS NULL) EXECUTE FUNCTION note_schedule();

ALTER TABLE customers ENABLE ROW LEVEL SECURITY;
CREATE POLICY customers_by_company ON customers
    USING (company_id = current_setting('app.company_id', true)::integer);
CREATE POLICY survey_notes_by_author ON survey_notes
    USING (author_id IN (SELECT id FROM users WHERE email = current_user));

CREATE TABLE archived_payments (archived_at timestamptz) INHERITS (payments);

CREATE SEQUENCE ticket_number_seq;
CREATE DOMAIN positive_cents AS bigint CHECK (VALUE >= 0);
CREATE TABLE tickets (
    id integer PRIMARY KEY DEFAULT nextval('ticket_number_seq'),
    title varchar(80) NOT NULL,
    body text,
    project_id integer REFERENCES solar_projects(id),
    priority smallint,
    refund positive_cents
);
CREATE INDEX tickets_title_lower_idx ON tickets (lower(title));
CREATE INDEX tickets_urgent_idx ON tickets (project_id) WHERE priority > 2;

-- A few rows, so that the review's size classes and "fails on a table with rows" have something to see.
INSERT INTO utility_rates (utility_name, zip_code, cents_per_kwh, effective_from)
    SELECT 'utility ' || i, lpad((i % 1000)::text, 5, '0'), 12.5, date '2026-01-01' FROM generate_series(1, 2000) i;
INSERT INTO equipment_catalog (sku, kind, manufacturer, watts)
    SELECT 'sku-' || i, 'panel', 'maker', 400 FROM generate_series(1, 50) i;
ANALYZE utility_rates;
ANALYZE equipment_catalog;
