-- Sample database for the demo: the backend of a solar installer.
CREATE TYPE project_status AS ENUM ('lead', 'surveyed', 'designed', 'permitted', 'installed', 'cancelled');
CREATE TYPE panel_orientation AS ENUM ('north', 'east', 'south', 'west', 'flat');

CREATE TABLE company (
    id serial PRIMARY KEY,
    name text NOT NULL,
    license_number text UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz
);
COMMENT ON TABLE company IS 'Installer companies (tenants)';

CREATE TABLE users (
    id serial PRIMARY KEY,
    company_id integer NOT NULL REFERENCES company(id) ON DELETE CASCADE,
    email text NOT NULL,
    full_name text,
    role text NOT NULL DEFAULT 'sales' CHECK (role IN ('admin', 'sales', 'surveyor', 'installer')),
    last_login_at timestamp,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_email_lower_idx ON users (lower(email));
CREATE INDEX users_company_id_idx ON users (company_id);

CREATE TABLE customers (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    company_id integer NOT NULL REFERENCES company(id),
    name text NOT NULL,
    phone text,
    email text,
    address text,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX customers_company_id_idx ON customers (company_id);

CREATE TABLE solar_projects (
    id serial PRIMARY KEY,
    company_id integer NOT NULL REFERENCES company(id) ON DELETE CASCADE,
    customer_id bigint NOT NULL REFERENCES customers(id),
    sales_rep_id integer REFERENCES users(id) ON DELETE SET NULL,
    status project_status NOT NULL DEFAULT 'lead',
    system_size_kw numeric(6,2) CHECK (system_size_kw > 0),
    contract_signed_at timestamptz,
    installed_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX solar_projects_company_status_idx ON solar_projects (company_id, status);
CREATE INDEX solar_projects_open_idx ON solar_projects (created_at) WHERE status NOT IN ('installed', 'cancelled');
COMMENT ON COLUMN solar_projects.system_size_kw IS 'DC system size in kilowatts';

CREATE TABLE project_system_details (
    project_id integer PRIMARY KEY REFERENCES solar_projects(id) ON DELETE CASCADE,
    panel_model text,
    panel_count integer CHECK (panel_count >= 0),
    inverter_model text,
    orientation panel_orientation,
    tilt_degrees numeric(4,1),
    battery_kwh numeric(6,2),
    designed_at timestamptz,
    approved_at timestamp,
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE survey_notes (
    id bigserial PRIMARY KEY,
    project_id integer NOT NULL REFERENCES solar_projects(id) ON DELETE CASCADE,
    author_id integer REFERENCES users(id),
    roof_type text,
    shading_percent smallint CHECK (shading_percent BETWEEN 0 AND 100),
    note text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX survey_notes_project_id_idx ON survey_notes (project_id, created_at DESC);

CREATE TABLE site_photos (
    id bigserial PRIMARY KEY,
    survey_note_id bigint NOT NULL REFERENCES survey_notes(id) ON DELETE CASCADE,
    storage_key text NOT NULL UNIQUE,
    taken_at timestamptz
);

CREATE TABLE permits (
    id serial PRIMARY KEY,
    project_id integer NOT NULL REFERENCES solar_projects(id),
    jurisdiction text NOT NULL,
    permit_number text,
    submitted_at date,
    approved_at date,
    UNIQUE (jurisdiction, permit_number)
);

CREATE TABLE equipment_catalog (
    sku text PRIMARY KEY,
    kind text NOT NULL CHECK (kind IN ('panel', 'inverter', 'battery', 'racking')),
    manufacturer text NOT NULL,
    watts integer,
    discontinued boolean NOT NULL DEFAULT false
);

CREATE TABLE project_equipment (
    project_id integer NOT NULL REFERENCES solar_projects(id) ON DELETE CASCADE,
    sku text NOT NULL REFERENCES equipment_catalog(sku),
    quantity integer NOT NULL CHECK (quantity > 0),
    PRIMARY KEY (project_id, sku)
);

CREATE TABLE installations (
    id serial PRIMARY KEY,
    project_id integer NOT NULL UNIQUE REFERENCES solar_projects(id),
    crew_lead_id integer REFERENCES users(id),
    scheduled_for date,
    completed_at timestamptz
);

CREATE TABLE invoices (
    id serial PRIMARY KEY,
    project_id integer NOT NULL REFERENCES solar_projects(id),
    amount_cents bigint NOT NULL CHECK (amount_cents >= 0),
    issued_at timestamptz NOT NULL DEFAULT now(),
    paid_at timestamptz
);

CREATE TABLE payments (
    id serial PRIMARY KEY,
    invoice_id integer NOT NULL REFERENCES invoices(id),
    amount_cents bigint NOT NULL,
    received_at timestamptz NOT NULL
);

CREATE TABLE utility_rates (
    id serial PRIMARY KEY,
    utility_name text NOT NULL,
    zip_code text NOT NULL,
    cents_per_kwh numeric(6,3) NOT NULL,
    effective_from date NOT NULL
);
CREATE INDEX utility_rates_zip_idx ON utility_rates (zip_code, effective_from DESC);

-- Monitoring data arrives per month: a partitioned table.
CREATE TABLE production_readings (
    project_id integer NOT NULL REFERENCES solar_projects(id),
    read_at timestamptz NOT NULL,
    kwh numeric(10,3) NOT NULL,
    PRIMARY KEY (project_id, read_at)
) PARTITION BY RANGE (read_at);
CREATE TABLE production_readings_2026_10 PARTITION OF production_readings
    FOR VALUES FROM ('2026-10-01') TO ('2026-11-01');
CREATE TABLE production_readings_2026_11 PARTITION OF production_readings
    FOR VALUES FROM ('2026-11-01') TO ('2026-12-01');

CREATE TABLE audit_log (
    id bigserial PRIMARY KEY,
    actor_id integer REFERENCES users(id),
    action text NOT NULL,
    payload jsonb,
    at timestamptz NOT NULL DEFAULT now()
);

CREATE VIEW open_projects AS
    SELECT p.id, p.company_id, c.name AS customer_name, p.status, p.created_at
    FROM solar_projects p JOIN customers c ON c.id = p.customer_id
    WHERE p.status NOT IN ('installed', 'cancelled');

CREATE FUNCTION touch_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END
$$;
CREATE TRIGGER project_system_details_touch BEFORE UPDATE ON project_system_details
    FOR EACH ROW EXECUTE FUNCTION touch_updated_at();
