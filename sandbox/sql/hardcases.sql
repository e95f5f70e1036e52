-- Fixture schema with the cases the splitter must get right.
CREATE EXTENSION IF NOT EXISTS citext;
CREATE SCHEMA app;
CREATE SCHEMA audit;

CREATE TYPE public.project_status AS ENUM ('lead', 'surveyed', 'installed');
CREATE DOMAIN public.us_zip AS text CHECK (VALUE ~ '^[0-9]{5}$');
CREATE TYPE app.money_pair AS (amount numeric, currency text);

CREATE TABLE public.company (
    id serial PRIMARY KEY,
    name citext NOT NULL UNIQUE,
    zip public.us_zip,
    created_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE public.company IS 'Installer companies';
COMMENT ON COLUMN public.company.name IS 'Legal name';

CREATE TABLE public.users (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    company_id integer NOT NULL REFERENCES public.company(id) ON DELETE CASCADE,
    email text NOT NULL,
    status public.project_status DEFAULT 'lead',
    CONSTRAINT users_email_check CHECK (position('@' in email) > 1)
);
CREATE UNIQUE INDEX users_lower_email_idx ON public.users (lower(email));
CREATE INDEX users_active_idx ON public.users (company_id) WHERE status <> 'installed';
CREATE INDEX users_company_email_idx ON public.users (company_id, email);

-- Same table name in two schemas, FK across schemas.
CREATE TABLE app.users (
    id integer PRIMARY KEY,
    public_user_id bigint REFERENCES public.users(id),
    price app.money_pair
);

CREATE TABLE audit.events (
    id bigserial,
    user_id integer REFERENCES app.users(id),
    at timestamptz NOT NULL,
    PRIMARY KEY (id, at)
) PARTITION BY RANGE (at);
CREATE TABLE audit.events_2025 PARTITION OF audit.events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE TABLE audit.events_2026 PARTITION OF audit.events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
CREATE INDEX events_at_idx ON audit.events (at);

CREATE VIEW public.active_users AS SELECT id, email FROM public.users WHERE status <> 'installed';
CREATE MATERIALIZED VIEW public.company_counts AS
    SELECT c.id, count(u.id) AS n FROM public.company c LEFT JOIN public.users u ON u.company_id = c.id GROUP BY c.id;
COMMENT ON VIEW public.active_users IS 'Users not yet installed';

CREATE FUNCTION public.touch_created() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN NEW.created_at := now(); RETURN NEW; END $$;
CREATE FUNCTION public.add(a integer, b integer) RETURNS integer LANGUAGE sql IMMUTABLE AS 'SELECT a + b';
CREATE FUNCTION public.add(a text, b text) RETURNS text LANGUAGE sql IMMUTABLE AS 'SELECT a || b';
CREATE TRIGGER company_touch BEFORE INSERT ON public.company FOR EACH ROW EXECUTE FUNCTION public.touch_created();

ALTER TABLE public.users ENABLE ROW LEVEL SECURITY;
CREATE POLICY users_same_company ON public.users USING (company_id = 1);

CREATE TABLE public."MixedCase" (
    "Id" integer PRIMARY KEY,
    "Label Text" text
);
CREATE TABLE public."with space" (id integer PRIMARY KEY, "MixedCase_id" integer REFERENCES public."MixedCase"("Id"));
COMMENT ON TABLE public."with space" IS 'a name; with; Type: tricks';

CREATE SEQUENCE public.invoice_number_seq START 1000;
CREATE TABLE public.invoices (
    id integer PRIMARY KEY DEFAULT nextval('public.invoice_number_seq'),
    project_ref text
);
