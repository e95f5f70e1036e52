--
-- PostgreSQL database dump
--

\restrict KQAESGOODZFNP0sduUCN5BpDF3k5q2IAv2yncC36LvEm7RCd0bNztUikN3QnhQn

-- Dumped from database version 15.18 (Debian 15.18-0+deb12u1)
-- Dumped by pg_dump version 15.18 (Debian 15.18-0+deb12u1)

-- Started on 2026-11-24 07:00:30 UTC

SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

--
-- TOC entry 7 (class 2615 OID 16658)
-- Name: app; Type: SCHEMA; Schema: -; Owner: -
--

CREATE SCHEMA app;


--
-- TOC entry 8 (class 2615 OID 16659)
-- Name: audit; Type: SCHEMA; Schema: -; Owner: -
--

CREATE SCHEMA audit;


--
-- TOC entry 2 (class 3079 OID 16553)
-- Name: citext; Type: EXTENSION; Schema: -; Owner: -
--

CREATE EXTENSION IF NOT EXISTS citext WITH SCHEMA public;


--
-- TOC entry 3543 (class 0 OID 0)
-- Dependencies: 2
-- Name: EXTENSION citext; Type: COMMENT; Schema: -; Owner: -
--

COMMENT ON EXTENSION citext IS 'data type for case-insensitive character strings';


--
-- TOC entry 913 (class 1247 OID 16672)
-- Name: money_pair; Type: TYPE; Schema: app; Owner: -
--

CREATE TYPE app.money_pair AS (
	amount numeric,
	currency text
);


--
-- TOC entry 906 (class 1247 OID 16661)
-- Name: project_status; Type: TYPE; Schema: public; Owner: -
--

CREATE TYPE public.project_status AS ENUM (
    'lead',
    'surveyed',
    'installed'
);


--
-- TOC entry 909 (class 1247 OID 16668)
-- Name: us_zip; Type: DOMAIN; Schema: public; Owner: -
--

CREATE DOMAIN public.us_zip AS text
	CONSTRAINT us_zip_check CHECK ((VALUE ~ '^[0-9]{5}$'::text));


--
-- TOC entry 279 (class 1255 OID 16757)
-- Name: add(integer, integer); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.add(a integer, b integer) RETURNS integer
    LANGUAGE sql IMMUTABLE
    AS $$SELECT a + b$$;


--
-- TOC entry 280 (class 1255 OID 16758)
-- Name: add(text, text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.add(a text, b text) RETURNS text
    LANGUAGE sql IMMUTABLE
    AS $$SELECT a || b$$;


--
-- TOC entry 278 (class 1255 OID 16756)
-- Name: touch_created(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.touch_created() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN NEW.created_at := now(); RETURN NEW; END $$;


SET default_tablespace = '';

SET default_table_access_method = heap;

--
-- TOC entry 222 (class 1259 OID 16703)
-- Name: users; Type: TABLE; Schema: app; Owner: -
--

CREATE TABLE app.users (
    id integer NOT NULL,
    public_user_id bigint,
    price app.money_pair
);


--
-- TOC entry 224 (class 1259 OID 16716)
-- Name: events; Type: TABLE; Schema: audit; Owner: -
--

CREATE TABLE audit.events (
    id bigint NOT NULL,
    user_id integer,
    at timestamp with time zone NOT NULL
)
PARTITION BY RANGE (at);


--
-- TOC entry 223 (class 1259 OID 16715)
-- Name: events_id_seq; Type: SEQUENCE; Schema: audit; Owner: -
--

CREATE SEQUENCE audit.events_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- TOC entry 3544 (class 0 OID 0)
-- Dependencies: 223
-- Name: events_id_seq; Type: SEQUENCE OWNED BY; Schema: audit; Owner: -
--

ALTER SEQUENCE audit.events_id_seq OWNED BY audit.events.id;


--
-- TOC entry 225 (class 1259 OID 16727)
-- Name: events_2025; Type: TABLE; Schema: audit; Owner: -
--

CREATE TABLE audit.events_2025 (
    id bigint DEFAULT nextval('audit.events_id_seq'::regclass) NOT NULL,
    user_id integer,
    at timestamp with time zone NOT NULL
);


--
-- TOC entry 226 (class 1259 OID 16736)
-- Name: events_2026; Type: TABLE; Schema: audit; Owner: -
--

CREATE TABLE audit.events_2026 (
    id bigint DEFAULT nextval('audit.events_id_seq'::regclass) NOT NULL,
    user_id integer,
    at timestamp with time zone NOT NULL
);


--
-- TOC entry 229 (class 1259 OID 16761)
-- Name: MixedCase; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public."MixedCase" (
    "Id" integer NOT NULL,
    "Label Text" text
);


--
-- TOC entry 221 (class 1259 OID 16686)
-- Name: users; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.users (
    id bigint NOT NULL,
    company_id integer NOT NULL,
    email text NOT NULL,
    status public.project_status DEFAULT 'lead'::public.project_status,
    CONSTRAINT users_email_check CHECK ((POSITION(('@'::text) IN (email)) > 1))
);


--
-- TOC entry 227 (class 1259 OID 16748)
-- Name: active_users; Type: VIEW; Schema: public; Owner: -
--

CREATE VIEW public.active_users AS
 SELECT users.id,
    users.email
   FROM public.users
  WHERE (users.status <> 'installed'::public.project_status);


--
-- TOC entry 3545 (class 0 OID 0)
-- Dependencies: 227
-- Name: VIEW active_users; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON VIEW public.active_users IS 'Users not yet installed';


--
-- TOC entry 219 (class 1259 OID 16674)
-- Name: company; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.company (
    id integer NOT NULL,
    name public.citext NOT NULL,
    zip public.us_zip,
    created_at timestamp with time zone DEFAULT now() NOT NULL
);


--
-- TOC entry 3546 (class 0 OID 0)
-- Dependencies: 219
-- Name: TABLE company; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON TABLE public.company IS 'Installer companies';


--
-- TOC entry 3547 (class 0 OID 0)
-- Dependencies: 219
-- Name: COLUMN company.name; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.company.name IS 'Legal name';


--
-- TOC entry 228 (class 1259 OID 16752)
-- Name: company_counts; Type: MATERIALIZED VIEW; Schema: public; Owner: -
--

CREATE MATERIALIZED VIEW public.company_counts AS
 SELECT c.id,
    count(u.id) AS n
   FROM (public.company c
     LEFT JOIN public.users u ON ((u.company_id = c.id)))
  GROUP BY c.id
  WITH NO DATA;


--
-- TOC entry 218 (class 1259 OID 16673)
-- Name: company_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.company_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- TOC entry 3548 (class 0 OID 0)
-- Dependencies: 218
-- Name: company_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.company_id_seq OWNED BY public.company.id;


--
-- TOC entry 231 (class 1259 OID 16778)
-- Name: invoice_number_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.invoice_number_seq
    START WITH 1000
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- TOC entry 232 (class 1259 OID 16779)
-- Name: invoices; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.invoices (
    id integer DEFAULT nextval('public.invoice_number_seq'::regclass) NOT NULL,
    project_ref text
);


--
-- TOC entry 220 (class 1259 OID 16685)
-- Name: users_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

ALTER TABLE public.users ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME public.users_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);


--
-- TOC entry 230 (class 1259 OID 16768)
-- Name: with space; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public."with space" (
    id integer NOT NULL,
    "MixedCase_id" integer
);


--
-- TOC entry 3549 (class 0 OID 0)
-- Dependencies: 230
-- Name: TABLE "with space"; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON TABLE public."with space" IS 'a name; with; Type: tricks';


--
-- TOC entry 3347 (class 0 OID 0)
-- Name: events_2025; Type: TABLE ATTACH; Schema: audit; Owner: -
--

ALTER TABLE ONLY audit.events ATTACH PARTITION audit.events_2025 FOR VALUES FROM ('2025-01-01 00:00:00+00') TO ('2026-01-01 00:00:00+00');


--
-- TOC entry 3348 (class 0 OID 0)
-- Name: events_2026; Type: TABLE ATTACH; Schema: audit; Owner: -
--

ALTER TABLE ONLY audit.events ATTACH PARTITION audit.events_2026 FOR VALUES FROM ('2026-01-01 00:00:00+00') TO ('2027-01-01 00:00:00+00');


--
-- TOC entry 3352 (class 2604 OID 16719)
-- Name: events id; Type: DEFAULT; Schema: audit; Owner: -
--

ALTER TABLE ONLY audit.events ALTER COLUMN id SET DEFAULT nextval('audit.events_id_seq'::regclass);


--
-- TOC entry 3349 (class 2604 OID 16677)
-- Name: company id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.company ALTER COLUMN id SET DEFAULT nextval('public.company_id_seq'::regclass);


--
-- TOC entry 3367 (class 2606 OID 16709)
-- Name: users users_pkey; Type: CONSTRAINT; Schema: app; Owner: -
--

ALTER TABLE ONLY app.users
    ADD CONSTRAINT users_pkey PRIMARY KEY (id);


--
-- TOC entry 3370 (class 2606 OID 16721)
-- Name: events events_pkey; Type: CONSTRAINT; Schema: audit; Owner: -
--

ALTER TABLE ONLY audit.events
    ADD CONSTRAINT events_pkey PRIMARY KEY (id, at);


--
-- TOC entry 3373 (class 2606 OID 16732)
-- Name: events_2025 events_2025_pkey; Type: CONSTRAINT; Schema: audit; Owner: -
--

ALTER TABLE ONLY audit.events_2025
    ADD CONSTRAINT events_2025_pkey PRIMARY KEY (id, at);


--
-- TOC entry 3376 (class 2606 OID 16741)
-- Name: events_2026 events_2026_pkey; Type: CONSTRAINT; Schema: audit; Owner: -
--

ALTER TABLE ONLY audit.events_2026
    ADD CONSTRAINT events_2026_pkey PRIMARY KEY (id, at);


--
-- TOC entry 3378 (class 2606 OID 16767)
-- Name: MixedCase MixedCase_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public."MixedCase"
    ADD CONSTRAINT "MixedCase_pkey" PRIMARY KEY ("Id");


--
-- TOC entry 3358 (class 2606 OID 16684)
-- Name: company company_name_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.company
    ADD CONSTRAINT company_name_key UNIQUE (name);


--
-- TOC entry 3360 (class 2606 OID 16682)
-- Name: company company_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.company
    ADD CONSTRAINT company_pkey PRIMARY KEY (id);


--
-- TOC entry 3382 (class 2606 OID 16786)
-- Name: invoices invoices_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.invoices
    ADD CONSTRAINT invoices_pkey PRIMARY KEY (id);


--
-- TOC entry 3365 (class 2606 OID 16694)
-- Name: users users_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.users
    ADD CONSTRAINT users_pkey PRIMARY KEY (id);


--
-- TOC entry 3380 (class 2606 OID 16772)
-- Name: with space with space_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public."with space"
    ADD CONSTRAINT "with space_pkey" PRIMARY KEY (id);


--
-- TOC entry 3368 (class 1259 OID 16745)
-- Name: events_at_idx; Type: INDEX; Schema: audit; Owner: -
--

CREATE INDEX events_at_idx ON ONLY audit.events USING btree (at);


--
-- TOC entry 3371 (class 1259 OID 16746)
-- Name: events_2025_at_idx; Type: INDEX; Schema: audit; Owner: -
--

CREATE INDEX events_2025_at_idx ON audit.events_2025 USING btree (at);


--
-- TOC entry 3374 (class 1259 OID 16747)
-- Name: events_2026_at_idx; Type: INDEX; Schema: audit; Owner: -
--

CREATE INDEX events_2026_at_idx ON audit.events_2026 USING btree (at);


--
-- TOC entry 3361 (class 1259 OID 16701)
-- Name: users_active_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX users_active_idx ON public.users USING btree (company_id) WHERE (status <> 'installed'::public.project_status);


--
-- TOC entry 3362 (class 1259 OID 16702)
-- Name: users_company_email_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX users_company_email_idx ON public.users USING btree (company_id, email);


--
-- TOC entry 3363 (class 1259 OID 16700)
-- Name: users_lower_email_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE UNIQUE INDEX users_lower_email_idx ON public.users USING btree (lower(email));


--
-- TOC entry 3383 (class 0 OID 0)
-- Name: events_2025_at_idx; Type: INDEX ATTACH; Schema: audit; Owner: -
--

ALTER INDEX audit.events_at_idx ATTACH PARTITION audit.events_2025_at_idx;


--
-- TOC entry 3384 (class 0 OID 0)
-- Name: events_2025_pkey; Type: INDEX ATTACH; Schema: audit; Owner: -
--

ALTER INDEX audit.events_pkey ATTACH PARTITION audit.events_2025_pkey;


--
-- TOC entry 3385 (class 0 OID 0)
-- Name: events_2026_at_idx; Type: INDEX ATTACH; Schema: audit; Owner: -
--

ALTER INDEX audit.events_at_idx ATTACH PARTITION audit.events_2026_at_idx;


--
-- TOC entry 3386 (class 0 OID 0)
-- Name: events_2026_pkey; Type: INDEX ATTACH; Schema: audit; Owner: -
--

ALTER INDEX audit.events_pkey ATTACH PARTITION audit.events_2026_pkey;


--
-- TOC entry 3391 (class 2620 OID 16759)
-- Name: company company_touch; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER company_touch BEFORE INSERT ON public.company FOR EACH ROW EXECUTE FUNCTION public.touch_created();


--
-- TOC entry 3388 (class 2606 OID 16710)
-- Name: users users_public_user_id_fkey; Type: FK CONSTRAINT; Schema: app; Owner: -
--

ALTER TABLE ONLY app.users
    ADD CONSTRAINT users_public_user_id_fkey FOREIGN KEY (public_user_id) REFERENCES public.users(id);


--
-- TOC entry 3389 (class 2606 OID 16722)
-- Name: events events_user_id_fkey; Type: FK CONSTRAINT; Schema: audit; Owner: -
--

ALTER TABLE audit.events
    ADD CONSTRAINT events_user_id_fkey FOREIGN KEY (user_id) REFERENCES app.users(id);


--
-- TOC entry 3387 (class 2606 OID 16695)
-- Name: users users_company_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.users
    ADD CONSTRAINT users_company_id_fkey FOREIGN KEY (company_id) REFERENCES public.company(id) ON DELETE CASCADE;


--
-- TOC entry 3390 (class 2606 OID 16773)
-- Name: with space with space_MixedCase_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public."with space"
    ADD CONSTRAINT "with space_MixedCase_id_fkey" FOREIGN KEY ("MixedCase_id") REFERENCES public."MixedCase"("Id");


--
-- TOC entry 3536 (class 0 OID 16686)
-- Dependencies: 221
-- Name: users; Type: ROW SECURITY; Schema: public; Owner: -
--

ALTER TABLE public.users ENABLE ROW LEVEL SECURITY;

--
-- TOC entry 3537 (class 3256 OID 16760)
-- Name: users users_same_company; Type: POLICY; Schema: public; Owner: -
--

CREATE POLICY users_same_company ON public.users USING ((company_id = 1));


-- Completed on 2026-11-24 07:00:30 UTC

--
-- PostgreSQL database dump complete
--

\unrestrict KQAESGOODZFNP0sduUCN5BpDF3k5q2IAv2yncC36LvEm7RCd0bNztUikN3QnhQn

