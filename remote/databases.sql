-- schemasync: the databases of a host whose `database:` names several (a list or glob patterns).
-- __PARAMS__ is replaced by schemasync with a quoted jsonb literal:
--   {"include": [regex], "exclude": [regex]}
-- Output, two lines: the matching databases the role may connect to (templates never), sorted,
-- each shell-quoted for `eval set --`; then, for schemasync, a JSON object: those names
-- ("chosen") and every database that is not a template ("present"), so that a name in
-- `database:` that matches none can be said, with the names that do exist.
\set ON_ERROR_STOP 1
SET standard_conforming_strings = on;
-- Only the catalog's functions and operators, as pg_dump does: one in a schema on the role's
-- path (public) with a closer signature would win overload resolution and run as this role.
-- (It also makes format_type() name the types the same way whatever the role's path.)
SET search_path = pg_catalog, pg_temp;
WITH params AS (SELECT __PARAMS__::jsonb AS p),
chosen AS (
    SELECT d.datname
    FROM pg_database d, params
    WHERE d.datallowconn
      AND NOT d.datistemplate
      AND has_database_privilege(d.datname, 'CONNECT')
      AND EXISTS (SELECT 1 FROM jsonb_array_elements_text(params.p -> 'include') AS re WHERE d.datname ~ re)
      AND NOT EXISTS (SELECT 1 FROM jsonb_array_elements_text(params.p -> 'exclude') AS re WHERE d.datname ~ re)
)
SELECT coalesce(string_agg('''' || replace(datname, '''', '''"''"''') || '''', ' ' ORDER BY datname), '')
       || E'\n' || json_build_object(
            'chosen', coalesce(json_agg(datname ORDER BY datname), '[]'),
            'present', (SELECT coalesce(json_agg(datname ORDER BY datname), '[]')
                        FROM pg_database WHERE NOT datistemplate))::text
FROM chosen;
