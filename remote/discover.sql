-- schemasync discovery, run by psql on the server in read-only sessions (refresh.sh ss_discover).
-- What a session does depends on the psql variables the script sets (remote/PROTOCOL.md):
--   ss_mode ''            discovery: what to dump (schema and exclude filters, or one --table),
--                         every catalog object pg_dump will print mapped to the relation that owns
--                         it, and pg_dump's selection arguments; with fingerprints in __PARAMS__,
--                         the quick check and the fingerprints of a whole refresh too;
--   ss_mode fingerprints  an incremental run's first step: the quick check (a sum over the catalog
--                         rows a dump depends on), then, unless it is the last refresh's
--                         (ss_expect), the fingerprints of every relation, at the same snapshot;
--   ss_mode quick         the quick check alone;
--   ss_mode owners        discovery of the file owners in ss_owners only (an incremental part);
--   ss_mode guessed       with ss_since: the relations whose catalog rows were written since the
--                         last refresh (at most 200), then their discovery (the speculative dump);
--   ss_export/ss_snapshot/ss_hold: the run's first session exports its snapshot (and, held, stays
--                         open until the script ends its input); every later session imports it.
-- Two lines, in the quick check and in fp_else, are filled in by schemasync from one list of
-- catalogs (OID_CATALOGS in schemasync/transport/remote_script.py). __PARAMS__ is replaced by
-- schemasync with a quoted jsonb literal:
--   {"mode": "full"|"table"|"list", "all_schemas": bool, "schemas": [regex], "exclude": [regex],
--    "dump_words": null or pg_dump -n patterns equivalent to "schemas" (globs pg_dump reads alike),
--    "table": "name or schema.name"}
-- Output, one value: line 1 "dump <major>" or "nodump <major>"; line 2 the JSON for schemasync;
-- then pg_dump's selection arguments, each shell-quoted, for `eval set --`.
\set ON_ERROR_STOP 1
SET standard_conforming_strings = on;
-- Only the catalog's functions and operators, as pg_dump does: one in a schema on the role's
-- path (public) with a closer signature would win overload resolution and run as this role.
-- (It also makes format_type() name the types the same way whatever the role's path.)
SET search_path = pg_catalog, pg_temp;
-- PostgreSQL 10 and older lack what the queries below use (jit, hashint8extended; psql's \if).
-- Said in words before anything else: a failing cast carries the message (no \if, no plpgsql).
SELECT CASE WHEN current_setting('server_version_num')::int < 110000
            THEN ('schemasync needs PostgreSQL 11 or later; this server is ' || current_setting('server_version'))::int
       END AS ss_too_old \gset
\if :{?ss_mode}
\else
\set ss_mode ''
\endif
\if :{?ss_owners}
\else
\set ss_owners '[]'
\endif
\if :{?ss_relations}
\else
\set ss_relations off
\endif
-- ss_quick_file, ss_quick_ready (a FIFO): fingerprints mode as the run's first step. The quick
-- check's document goes to the file, then the FIFO is opened (the script reads it then); the
-- fingerprints follow at the same snapshot unless the quick check is the last refresh's.
\if :{?ss_expect}
\else
\set ss_expect ''
\endif
\if :{?ss_quick_file}
\else
\set ss_quick_file ''
\endif
\if :{?ss_quick_ready}
\else
\set ss_quick_ready ''
\endif
-- ss_export_file, ss_export_ready (a FIFO): a whole refresh's first session, which says its
-- exported snapshot at once, for the early pg_dump to import (refresh.sh ss_export_first)
\if :{?ss_export_file}
\else
\set ss_export_file ''
\endif
\if :{?ss_export_ready}
\else
\set ss_export_ready ''
\endif
-- the quick check's value and snapshot from the run's first step (fingerprints mode): reused when
-- this session sees the very same transactions, so that both describe one state of the catalog
\if :{?ss_quick_given}
\else
\set ss_quick_given ''
\endif
\if :{?ss_quick_snapshot}
\else
\set ss_quick_snapshot ''
\endif
-- ss_snapshot: a snapshot the run's first session exported; this one imports it, so that it
-- describes the very catalog that session saw. ss_hold=on: this session is the first; it exports
-- its snapshot (every later discovery and pg_dump of the run imports it, refresh.sh) and, once
-- its document is out, says "ss-held <snapshot>" and waits for the script to end its input
-- instead of ending its transaction. (A standby exports snapshots from PostgreSQL 10 on.)
\if :{?ss_snapshot}
\else
\set ss_snapshot ''
\endif
\if :{?ss_hold}
\else
\set ss_hold off
\endif
SELECT :'ss_snapshot' ~ '^[0-9A-F-]+$' AS ss_import,
       :'ss_snapshot' = '' AND :'ss_hold' = 'on'
           AND (current_setting('server_version_num')::int >= 100000 OR NOT pg_is_in_recovery()) AS ss_export,
       current_setting('server_version_num')::int >= 90600 AS ss_has_idle_timeout,
       current_setting('server_version_num')::int >= 170000 AS ss_has_transaction_timeout \gset
-- where temporary objects live (pg_temp_N, pg_toast_temp_N): never dumped, a session's own
\set ss_temp_schema '^pg_(toast_)?temp_[0-9]+$'
\if :ss_has_transaction_timeout
-- PostgreSQL 17's bound on a whole transaction (a team may set it on its roles), off as pg_dump
-- turns it off for its own: the first session is held open while the dumps import its snapshot,
-- and discovery of 20,000 tables takes seconds (each statement stays bounded, below)
SET transaction_timeout = 0;
\endif
BEGIN TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY;
\if :ss_import
SET TRANSACTION SNAPSHOT :'ss_snapshot';
\endif
SET LOCAL statement_timeout = '300s';
SET LOCAL lock_timeout = '30s';
-- The CTEs below join sets of thousands of catalog rows whose sizes the planner cannot estimate;
-- a nested loop over two of them is quadratic in the number of tables. Hash joins are linear.
-- (Per-row lookups are written as scalar subqueries on catalog indexes, which this leaves alone.)
SET LOCAL enable_nestloop = off;
-- and a merge join sorts both sides first: hashing is quicker at these sizes
SET LOCAL enable_mergejoin = off;
SET LOCAL jit = off;  -- compiling this query would take longer than running it
-- and no parallel workers: they come from the server's shared pool, which the application's own
-- queries need more than this catalog read does (and it is no slower without them)
SET LOCAL max_parallel_workers_per_gather = 0;
\if :ss_export
\if :ss_has_idle_timeout
SET LOCAL idle_in_transaction_session_timeout = 0;  -- held open while the dumps import the snapshot
\endif
\endif
-- Catalogs some supported servers lack join the fingerprint of everything else where they exist.
SELECT to_regclass('pg_catalog.pg_publication_namespace') IS NOT NULL AS ss_has_pubns,
       current_setting('server_version_num')::int >= 140000 AS ss_hash_record \gset
\set ss_export_id ''
\if :ss_export
SELECT pg_export_snapshot() AS ss_export_id \gset
\endif
SELECT :'ss_export_file' <> '' AND :'ss_export_ready' <> '' AS ss_export_early \gset
\if :ss_export_early
-- the snapshot (an empty line if this server cannot export one), then a line on the FIFO
\o :ss_export_file
\qecho :ss_export_id
\o :ss_export_ready
\qecho said
\o
\endif
\if :ss_has_pubns
\set fp_more 'UNION ALL SELECT ''b'' || oid || '':'' || xmin FROM pg_publication_namespace'
\set quick_more 'UNION ALL SELECT count(*), sum(hashint8extended(oid::int8, xmin::text::int8)) FROM pg_publication_namespace'
\else
\set fp_more ''
\set quick_more ''
\endif
-- The roles this database's objects name (policies, mappings, owners; GRANT only when the files
-- show privileges), as one subquery for both the quick check and the fingerprint of everything
-- else: roles come and go across the cluster (one per lease where a vault hands out
-- credentials) without touching this database. The bootstrap superuser (oid 10) is pinned: no
-- pg_shdepend rows name it, and both add it.
SELECT CASE WHEN (__PARAMS__::jsonb ->> 'privileges')::boolean THEN 'true' ELSE 'false' END AS ss_privileges \gset
\set ss_named_roles '(SELECT d.refobjid FROM pg_shdepend d WHERE d.refclassid = ''pg_authid''::regclass AND d.dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) AND (d.deptype <> ''a'' OR ' :ss_privileges '))'
-- The quick check: every catalog row a dump may depend on, database-wide, by identity and xmin,
-- summed. Equal to the last refresh's: nothing changed, and nothing more is asked. (VACUUM and
-- ANALYZE update pg_class in place, keeping xmin; anything else that differs costs only the
-- fingerprints query.)
-- A statement of its own, run only where its value is used: the first step of an incremental
-- run (which ends here, without planning the discovery query below), and the fingerprints a
-- whole refresh keeps for the next one.
-- The value kept with the fingerprints is always this session's (or one computed at the same
-- snapshot): a change made between the first step and this one, then undone, would otherwise
-- bring the quick check back to the kept value while the files hold the change.
SELECT :'ss_mode' = 'quick' OR (:'ss_mode' = 'fingerprints' AND :'ss_quick_file' <> '') AS ss_quick_only,
       :'ss_quick_file' <> '' AND :'ss_quick_ready' <> '' AS ss_quick_early,
       :'ss_mode' IN ('quick', 'fingerprints') OR (:'ss_mode' = '' AND (__PARAMS__::jsonb ->> 'fingerprints')::boolean) AS ss_want_quick,
       :'ss_mode' = 'fingerprints' AND :'ss_quick_given' ~ '^[0-9]+:-?[0-9]+$'
           AND txid_current_snapshot()::text = :'ss_quick_snapshot' AS ss_quick_same \gset
\set ss_quick ''
\if :ss_quick_same
\set ss_quick :ss_quick_given
\elif :ss_want_quick
-- Temporary objects (in pg_temp_N and pg_toast_temp_N) are never dumped and come and go with
-- sessions: their rows are left out, so that a session holding a temporary table changes nothing.
WITH tmp_ns AS (SELECT oid FROM pg_namespace WHERE nspname ~ :'ss_temp_schema'),
tmp AS (SELECT oid FROM pg_class WHERE relnamespace IN (SELECT oid FROM tmp_ns)),
tmp_obj(classid, oid) AS (
    SELECT 'pg_class'::regclass::oid, oid FROM tmp
    UNION ALL SELECT 'pg_type'::regclass::oid, oid FROM pg_type WHERE typnamespace IN (SELECT oid FROM tmp_ns)
    UNION ALL SELECT 'pg_proc'::regclass::oid, oid FROM pg_proc WHERE pronamespace IN (SELECT oid FROM tmp_ns)
    UNION ALL SELECT 'pg_rewrite'::regclass::oid, oid FROM pg_rewrite WHERE ev_class IN (SELECT oid FROM tmp)
    UNION ALL SELECT 'pg_attrdef'::regclass::oid, oid FROM pg_attrdef WHERE adrelid IN (SELECT oid FROM tmp)
    UNION ALL SELECT 'pg_constraint'::regclass::oid, oid FROM pg_constraint WHERE conrelid IN (SELECT oid FROM tmp)
    UNION ALL SELECT 'pg_trigger'::regclass::oid, oid FROM pg_trigger WHERE tgrelid IN (SELECT oid FROM tmp)
    UNION ALL SELECT 'pg_policy'::regclass::oid, oid FROM pg_policy WHERE polrelid IN (SELECT oid FROM tmp)
)
SELECT sum(n) || ':' || sum(h) AS ss_quick
FROM (
    -- integers hashed, each row's xmin the seed (a text key per row costs twice as much): a row
    -- inserted, updated or deleted changes its table's sum
    SELECT count(*), sum(hashint8extended((objoid::int8 << 24) # (classoid::int8 << 8) # objsubid, xmin::text::int8))
    FROM pg_description WHERE (classoid, objoid) NOT IN (SELECT classid, oid FROM tmp_obj)
    UNION ALL SELECT count(*), sum(hashint8extended(oid::int8, xmin::text::int8)) FROM pg_class WHERE relpersistence <> 't'
    -- user tables' size classes (ANALYZE writes them in place, keeping xmin): one moving to
    -- another power of ten is news for the manifest; counted as no rows, so the count stays the
    -- catalog's. Not the system catalogs' (oid < 16384), whose sizes move with every DDL
    UNION ALL SELECT 0, sum(hashint8extended(oid::int8, CASE WHEN reltuples < 1 THEN reltuples::int8
                                                             ELSE floor(log(reltuples::numeric))::int8 + 1 END
                                                        + 64 * CASE WHEN relpages <= 0 THEN 0 ELSE floor(log(
                                                  relpages::numeric * current_setting('block_size')::numeric))::int8 + 1 END))
    FROM pg_class WHERE relkind IN ('r', 'f') AND relpersistence <> 't' AND oid >= 16384
    UNION ALL
    SELECT count(*), sum(hashint8extended((attrelid::int8 << 16) # attnum, xmin::text::int8)) FROM pg_attribute
    WHERE attrelid NOT IN (SELECT oid FROM tmp)
    UNION ALL SELECT count(*), sum(hashint8extended(oid::int8, xmin::text::int8)) FROM pg_attrdef
    WHERE adrelid NOT IN (SELECT oid FROM tmp)
    UNION ALL SELECT count(*), sum(hashint8extended(oid::int8, xmin::text::int8)) FROM pg_constraint
    WHERE conrelid NOT IN (SELECT oid FROM tmp)
    UNION ALL SELECT count(*), sum(hashint8extended(indexrelid::int8, xmin::text::int8)) FROM pg_index
    WHERE indrelid NOT IN (SELECT oid FROM tmp)
    UNION ALL SELECT count(*), sum(hashint8extended(oid::int8, xmin::text::int8)) FROM pg_trigger
    WHERE tgrelid NOT IN (SELECT oid FROM tmp)
    UNION ALL SELECT count(*), sum(hashint8extended(oid::int8, xmin::text::int8)) FROM pg_policy
    WHERE polrelid NOT IN (SELECT oid FROM tmp)
    UNION ALL SELECT count(*), sum(hashint8extended(oid::int8, xmin::text::int8)) FROM pg_rewrite
    WHERE ev_class NOT IN (SELECT oid FROM tmp)
    UNION ALL
    SELECT count(*), sum(hashint8extended((objid::int8 << 32) # refobjid::int8 # (classid::int8 << 20)
                                          # (objsubid::int8 << 10) # refobjsubid, xmin::text::int8))
    FROM pg_depend WHERE (classid, objid) NOT IN (SELECT classid, oid FROM tmp_obj)
    UNION ALL SELECT count(*), sum(hashint8extended((inhrelid::int8 << 32) # inhparent::int8, xmin::text::int8))
    FROM pg_inherits WHERE inhrelid NOT IN (SELECT oid FROM tmp)
    UNION ALL SELECT count(*), sum(hashint8extended(seqrelid::int8, xmin::text::int8)) FROM pg_sequence
    WHERE seqrelid NOT IN (SELECT oid FROM tmp)
    UNION ALL SELECT count(*), sum(hashint8extended(partrelid::int8, xmin::text::int8)) FROM pg_partitioned_table
    WHERE partrelid NOT IN (SELECT oid FROM tmp)
    UNION ALL SELECT count(*), sum(hashint8extended(ftrelid::int8, xmin::text::int8)) FROM pg_foreign_table
    -- everything else fp_else hashes, the same way: any change there is seen here
    UNION ALL SELECT count(*), sum(hashint8extended(oid::int8, xmin::text::int8)) FROM pg_namespace
    WHERE oid NOT IN (SELECT oid FROM tmp_ns)
    UNION ALL SELECT count(*), sum(hashint8extended(oid::int8, xmin::text::int8)) FROM pg_proc
    WHERE pronamespace NOT IN (SELECT oid FROM tmp_ns)
    UNION ALL SELECT count(*), sum(hashint8extended(oid::int8, xmin::text::int8)) FROM pg_type
    WHERE typnamespace NOT IN (SELECT oid FROM tmp_ns)
    __QUICK_CATALOGS__
    UNION ALL SELECT count(*), sum(hashint8extended(aggfnoid::oid::int8, xmin::text::int8)) FROM pg_aggregate
    UNION ALL SELECT count(*), sum(hashint8extended(rngtypid::int8, xmin::text::int8)) FROM pg_range
    UNION ALL SELECT count(*), sum(hashint8extended((mapcfg::int8 << 24) # (maptokentype::int8 << 12) # mapseqno,
                                                    xmin::text::int8)) FROM pg_ts_config_map
    UNION ALL SELECT count(*), sum(hashint8extended((objoid::int8 << 24) # (classoid::int8 << 8) # objsubid, xmin::text::int8))
    FROM pg_init_privs
    UNION ALL SELECT count(*), sum(hashint8extended((objoid::int8 << 24) # (classoid::int8 << 8) # objsubid, xmin::text::int8))
    FROM pg_seclabel
    -- names only (the catalogs behind these views are for superusers): a role or tablespace renamed.
    -- The roles this database's objects name, as the fingerprint of everything else has them
    UNION ALL SELECT count(*), sum(hashtextextended(a.oid || ':' || a.rolname, 0)) FROM pg_roles a
    WHERE a.oid = 10 OR a.oid IN :ss_named_roles
    UNION ALL SELECT count(*), sum(hashtextextended(oid || ':' || spcname, 0)) FROM pg_tablespace
    UNION ALL SELECT count(*), sum(hashtextextended(umid || ':' || srvid || ':' || umuser || ':' || coalesce(umoptions::text, ''), 0))
    FROM pg_user_mappings
    :quick_more
) AS quick(n, h) \gset
\endif
-- Mode guessed: what changed since the last refresh, guessed, for the script to dump while the
-- fingerprints are computed (in another session, whose snapshot is older than this one). The
-- relations that catalog rows written since the last refresh's snapshot (xmin newer than
-- ss_since, modulo 2^32) belong to, at most 200; then discovery of their file owners, as owners
-- mode has it. Only a guess: a deletion leaves no row, and the fingerprints decide; the dump is
-- used only if it is what they ask for.
\set ss_guess ''
\if :{?ss_since}
SELECT :'ss_since' ~ '^[0-9]{1,10}$' AND :'ss_mode' = 'guessed' AS ss_want_guess \gset
\if :ss_want_guess
SELECT CASE WHEN count(*) <= 200 THEN coalesce(string_agg(rel::text, ' ' ORDER BY rel), '') ELSE '' END AS ss_guess
FROM (
    SELECT DISTINCT rel FROM (
        SELECT oid, xmin FROM pg_class
        UNION ALL SELECT attrelid, xmin FROM pg_attribute
        UNION ALL SELECT adrelid, xmin FROM pg_attrdef
        UNION ALL SELECT conrelid, xmin FROM pg_constraint
        UNION ALL SELECT confrelid, xmin FROM pg_constraint
        UNION ALL SELECT indrelid, xmin FROM pg_index
        UNION ALL SELECT tgrelid, xmin FROM pg_trigger
        UNION ALL SELECT polrelid, xmin FROM pg_policy
        UNION ALL SELECT ev_class, xmin FROM pg_rewrite
        UNION ALL SELECT inhrelid, xmin FROM pg_inherits
        UNION ALL SELECT inhparent, xmin FROM pg_inherits
        UNION ALL SELECT seqrelid, xmin FROM pg_sequence
        UNION ALL SELECT partrelid, xmin FROM pg_partitioned_table
        UNION ALL SELECT ftrelid, xmin FROM pg_foreign_table
        UNION ALL SELECT objoid, xmin FROM pg_description WHERE classoid = 'pg_class'::regclass
        UNION ALL SELECT refobjid, xmin FROM pg_depend WHERE refclassid = 'pg_class'::regclass
        UNION ALL SELECT objid, xmin FROM pg_depend WHERE classid = 'pg_class'::regclass
    ) AS written(rel, x)
    WHERE rel <> 0 AND ((x::text::int8 - :'ss_since'::int8) & 4294967295) < 2147483648
      AND rel NOT IN (SELECT oid FROM pg_class WHERE relpersistence = 't')
) AS guess \gset
\endif
\endif
SELECT :'ss_mode' = 'guessed' AS ss_guessed, :'ss_guess' <> '' AS ss_guess_any \gset
\if :ss_guessed
\if :ss_guess_any
-- discovery of the file owners of the relations guessed (owners mode, as the script asks for it)
\set ss_mode owners
\set ss_relations on
SELECT '[' || replace(:'ss_guess', ' ', ',') || ']' AS ss_owners \gset
\else
SELECT 'nodump ' || (current_setting('server_version_num')::int / 10000)::text;
COMMIT;
\quit
\endif
\endif
\if :ss_quick_only
\if :ss_quick_early
\o :ss_quick_file
\endif
SELECT 'quick ' || (current_setting('server_version_num')::int / 10000)::text || E'\n'
       || json_build_object('version', current_setting('server_version_num')::int,
                            'database', current_database(), 'user', current_user,
                            'tables', '[]'::json, 'relations', '[]'::json, 'subobjects', '[]'::json,
                            'quick', :'ss_quick', 'snapshot', txid_current_snapshot()::text)::text || E'\n'
       -- the snapshot the speculative discovery and dump import while the fingerprints are computed
       || CASE WHEN :'ss_export_id' <> '' THEN 'export ' || :'ss_export_id' ELSE '' END;
\if :ss_quick_early
-- said (a line the script reads); and the script may now dump its guess at this snapshot
\o :ss_quick_ready
\qecho said
\o
\endif
SELECT :'ss_mode' = 'quick' OR :'ss_quick' = :'ss_expect' AS ss_quick_done \gset
\if :ss_quick_done
COMMIT;
\quit
\endif
\endif
WITH RECURSIVE
-- The script may override the mode (psql variables ss_mode, ss_owners): an incremental run first asks for
-- fingerprints only, then for the file owners schemasync names (or everything).
params AS (
    SELECT __PARAMS__::jsonb
           || CASE WHEN :'ss_mode' = '' THEN '{}'::jsonb
                   ELSE jsonb_build_object('mode', :'ss_mode', 'fingerprints', :'ss_mode' = 'fingerprints') END
           || jsonb_build_object('owners', :'ss_owners'::jsonb,
                                 -- owners mode: "owners" are relations; their file owners are dumped
                                 'guess', :'ss_relations' = 'on') AS p
),
-- temporary objects: never dumped, and a session's own (see the quick check)
tmp_ns AS (SELECT oid FROM pg_namespace WHERE nspname ~ :'ss_temp_schema'),
tmp_users(classid, oid) AS (  -- temporary views and functions, which may use a table
    SELECT 'pg_rewrite'::regclass::oid, w.oid FROM pg_rewrite w JOIN pg_class v ON v.oid = w.ev_class
    WHERE v.relpersistence = 't'
    UNION ALL
    SELECT 'pg_proc'::regclass::oid, p.oid FROM pg_proc p WHERE p.pronamespace IN (SELECT oid FROM tmp_ns)
),
schemas AS (
    SELECT n.oid, n.nspname
    FROM pg_namespace n, params
    WHERE n.nspname <> 'information_schema'
      AND n.nspname !~ '^pg_'
      AND EXISTS (SELECT 1 FROM jsonb_array_elements_text(params.p -> 'schemas') AS re WHERE n.nspname ~ re)
),
-- Owners mode (a part of the schema, named by relation) without exclude patterns: only the
-- relations that can share a file with those named are looked at, not every relation. A
-- relation's file owner is found (part_root, base, seq_owner, owners below) by following only
-- these links: a partition to its parent, an index to its table, a sequence to the table that
-- owns it; so the closure of the named relations under them, both ways, holds every relation of
-- their files and gives each the owner a look at every relation would. (Read only where rel
-- says: the one place that decides when it applies.)
near(oid) AS (
    SELECT w::oid FROM params, jsonb_array_elements_text(params.p -> 'owners') AS w
    UNION
    SELECT l.oid FROM near n, LATERAL (  -- each by its catalog's index
        SELECT i.inhparent FROM pg_inherits i WHERE i.inhrelid = n.oid
        UNION ALL SELECT i.inhrelid FROM pg_inherits i WHERE i.inhparent = n.oid
        UNION ALL SELECT x.indrelid FROM pg_index x WHERE x.indexrelid = n.oid
        UNION ALL SELECT x.indexrelid FROM pg_index x WHERE x.indrelid = n.oid
        UNION ALL SELECT d.refobjid FROM pg_depend d
        WHERE d.classid = 'pg_class'::regclass AND d.objid = n.oid
          AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
        UNION ALL SELECT d.objid FROM pg_depend d
        WHERE d.refclassid = 'pg_class'::regclass AND d.refobjid = n.oid
          AND d.classid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
    ) AS l(oid)
),
rel AS (
    SELECT c.oid, s.nspname, c.relname, c.relkind::text AS relkind, c.relispartition
    FROM pg_class c JOIN schemas s ON s.oid = c.relnamespace, params
    WHERE c.relkind IN ('r', 'p', 'f', 'v', 'm', 'S', 'i', 'I')
      AND CASE WHEN params.p ->> 'mode' = 'owners' AND jsonb_array_length(params.p -> 'exclude') = 0
               THEN c.oid IN (SELECT oid FROM near) ELSE true END
      -- objects that belong to an extension are not dumped
      AND NOT EXISTS (SELECT 1 FROM pg_depend d
                      WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
),
-- each partition (at any depth) with its top-level table
part_root(oid, root) AS (
    SELECT r.oid, r.oid FROM rel r WHERE r.relkind IN ('r', 'p', 'f') AND NOT r.relispartition
    UNION ALL
    SELECT i.inhrelid, pr.root
    FROM part_root pr
    JOIN pg_inherits i ON i.inhparent = pr.oid
    JOIN rel c ON c.oid = i.inhrelid AND c.relispartition
),
-- the relation whose file each table, view and materialized view goes to
base AS (
    SELECT r.oid, CASE WHEN r.relkind IN ('r', 'p', 'f') THEN coalesce(pr.root, r.oid) ELSE r.oid END AS owner
    FROM rel r LEFT JOIN part_root pr ON pr.oid = r.oid
    WHERE r.relkind IN ('r', 'p', 'f', 'v', 'm')
),
seq_owner AS (
    SELECT DISTINCT ON (d.objid) d.objid AS seq, d.refobjid AS tbl
    FROM pg_depend d
    WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass
      AND d.deptype IN ('a', 'i') AND d.objid IN (SELECT oid FROM rel WHERE relkind = 'S')
    ORDER BY d.objid, d.refobjid
),
owners AS (
    SELECT oid, owner FROM base
    UNION ALL
    SELECT r.oid, coalesce(b.owner, r.oid)
    FROM rel r LEFT JOIN pg_index x ON x.indexrelid = r.oid LEFT JOIN base b ON b.oid = x.indrelid
    WHERE r.relkind IN ('i', 'I')
    UNION ALL
    SELECT r.oid, coalesce(b.owner, r.oid)
    FROM rel r LEFT JOIN seq_owner so ON so.seq = r.oid LEFT JOIN base b ON b.oid = so.tbl
    WHERE r.relkind = 'S'
),
roots AS (  -- tables as readers see them: partitions folded into their parent
    SELECT r.* FROM rel r JOIN owners o ON o.oid = r.oid AND o.owner = r.oid WHERE r.relkind IN ('r', 'p', 'f')
),
excluded AS (
    SELECT t.oid FROM roots t, params
    WHERE EXISTS (SELECT 1 FROM jsonb_array_elements_text(params.p -> 'exclude') AS re
                  WHERE t.relname ~ re OR (t.nspname || '.' || t.relname) ~ re)
),
target AS (
    SELECT t.oid FROM roots t, params
    WHERE params.p ->> 'mode' = 'table'
      AND (t.relname = params.p ->> 'table' OR t.nspname || '.' || t.relname = params.p ->> 'table')
      AND t.oid NOT IN (SELECT oid FROM excluded)
),
asked AS (  -- owners mode: the file owners named; or, a guess, the file owners of the relations named
    SELECT x.owner AS oid
    FROM params, jsonb_array_elements_text(params.p -> 'owners') w JOIN owners x ON x.oid = w::oid
    WHERE params.p ->> 'mode' = 'owners' AND (x.owner = x.oid OR (params.p ->> 'guess')::boolean)
),
chosen AS (  -- the file owners that are part of this run
    SELECT o.owner AS oid FROM owners o, params
    WHERE CASE WHEN params.p ->> 'mode' = 'table'
               THEN o.owner IN (SELECT oid FROM target) AND (SELECT count(*) FROM target) = 1
               WHEN params.p ->> 'mode' = 'owners'
               THEN o.owner IN (SELECT oid FROM asked) AND o.owner NOT IN (SELECT oid FROM excluded)
               ELSE o.owner NOT IN (SELECT oid FROM excluded) END
    GROUP BY o.owner
),
sel AS (
    SELECT r.*, o.owner FROM rel r JOIN owners o ON o.oid = r.oid WHERE o.owner IN (SELECT oid FROM chosen)
),
sel_roots AS (SELECT oid FROM sel WHERE owner = oid),
-- foreign keys from or to the selected tables and their partitions (declared ones: a partition's
-- copy of its parent's key has a conparentid). A key declared on a partition lives in the file of
-- the partitioned table, and is counted there.
-- Two joins, not `IN (...) OR IN (...)`: an OR of subqueries is re-run per constraint (quadratic).
fk AS (
    SELECT c.oid FROM pg_constraint c JOIN sel s ON s.oid = c.conrelid
    WHERE c.contype = 'f' AND c.conparentid = 0
    UNION
    SELECT c.oid FROM pg_constraint c JOIN sel_roots s ON s.oid = c.confrelid
    WHERE c.contype = 'f' AND c.conparentid = 0
),
sub AS (
    SELECT 'pg_constraint'::regclass::oid AS classid, c.oid, c.conrelid AS relid
    FROM pg_constraint c WHERE c.conrelid IN (SELECT oid FROM sel)
    UNION ALL
    SELECT 'pg_trigger'::regclass::oid, t.oid, t.tgrelid FROM pg_trigger t
    WHERE NOT t.tgisinternal AND t.tgrelid IN (SELECT oid FROM sel)
    UNION ALL
    SELECT 'pg_policy'::regclass::oid, p.oid, p.polrelid FROM pg_policy p WHERE p.polrelid IN (SELECT oid FROM sel)
    UNION ALL
    SELECT 'pg_rewrite'::regclass::oid, w.oid, w.ev_class FROM pg_rewrite w
    WHERE w.rulename <> '_RETURN' AND w.ev_class IN (SELECT oid FROM sel)
    UNION ALL
    SELECT 'pg_attrdef'::regclass::oid, a.oid, a.adrelid FROM pg_attrdef a WHERE a.adrelid IN (SELECT oid FROM sel)
),
-- Fingerprints (only when asked): per file owner, a hash of the catalog rows its file is made
-- of, and one hash of everything else a dump may print. schemasync compares them with the last
-- refresh's and dumps only what changed. A row's xmin changes with every update of it; pg_class is
-- hashed by content instead (VACUUM, ANALYZE, TRUNCATE and REFRESH rewrite its sizes and files).
fp_rel AS (  -- acl: the files show privileges (without them, a GRANT changes no file)
    SELECT s.oid, s.owner, (params.p ->> 'privileges')::boolean AS acl FROM sel s, params
    WHERE (params.p ->> 'fingerprints')::boolean
),
fp_obj(classid, oid, owner) AS (  -- every catalog object in a file owner's file
    SELECT 'pg_class'::regclass::oid, oid, owner FROM fp_rel
    UNION ALL
    SELECT s.classid, s.oid, r.owner FROM sub s JOIN fp_rel r ON r.oid = s.relid
    UNION ALL
    SELECT 'pg_rewrite'::regclass::oid, w.oid, r.owner FROM pg_rewrite w JOIN fp_rel r ON r.oid = w.ev_class
    WHERE w.rulename = '_RETURN'
),
fp_tok(owner, tok) AS (
    -- the TOAST table is rebuilt with a new OID by REFRESH, but its options are the table's
    SELECT r.owner, 'c' || c.oid || ':' ||
\if :ss_hash_record
               -- each column hashed as itself: four times quicker than md5 of the row as text
               hash_record_extended(ROW(c.relname, c.relnamespace, c.reltype, c.reloftype, c.relam,
               c.reltablespace, c.relpersistence, c.relkind, c.relnatts, c.relchecks, c.relrowsecurity,
               c.relforcerowsecurity, c.relispopulated, c.relreplident, c.relispartition,
               CASE WHEN r.acl THEN c.relacl END, c.reloptions,
               c.relpartbound::text, t.reloptions), 0)::text
\else
               md5(ROW(c.relname, c.relnamespace, c.reltype, c.reloftype, c.relam,
               c.reltablespace, c.relpersistence, c.relkind, c.relnatts, c.relchecks, c.relrowsecurity,
               c.relforcerowsecurity, c.relispopulated, c.relreplident, c.relispartition,
               CASE WHEN r.acl THEN c.relacl END, c.reloptions,
               c.relpartbound, t.reloptions)::text)
\endif
    FROM pg_class c JOIN fp_rel r ON r.oid = c.oid LEFT JOIN pg_class t ON t.oid = c.reltoastrelid
    UNION ALL
    SELECT r.owner, 'a' || a.attnum || ':' || a.attrelid || ':' || a.xmin FROM pg_attribute a JOIN fp_rel r ON r.oid = a.attrelid
    WHERE a.attnum > 0
    UNION ALL
    SELECT r.owner, 'd' || x.oid || ':' || x.xmin FROM pg_attrdef x JOIN fp_rel r ON r.oid = x.adrelid
    UNION ALL
    SELECT r.owner, 'k' || x.oid || ':' || x.xmin FROM pg_constraint x JOIN fp_rel r ON r.oid = x.conrelid
    UNION ALL  -- a foreign key into the table: its file's `Referenced by` line names the columns
    SELECT r.owner, 'f' || x.oid || ':' || x.xmin || ':'
                    || (SELECT string_agg(a.attname, ',' ORDER BY a.attnum) FROM pg_attribute a
                        WHERE a.attrelid = x.conrelid AND a.attnum = ANY (x.conkey))
    FROM pg_constraint x JOIN fp_rel r ON r.oid = x.confrelid
    UNION ALL  -- what uses the table (views, SQL functions): the manifest lists them
    SELECT r.owner, 'u' || x.classid || ':' || x.objid || ':' || x.refobjsubid || ':' || x.xmin
    FROM pg_depend x JOIN fp_rel r ON r.oid = x.refobjid
    WHERE x.refclassid = 'pg_class'::regclass AND x.classid IN ('pg_rewrite'::regclass, 'pg_proc'::regclass)
      AND (x.classid, x.objid) NOT IN (SELECT classid, oid FROM tmp_users)
    UNION ALL
    SELECT r.owner, 't' || x.oid || ':' || x.xmin FROM pg_trigger x JOIN fp_rel r ON r.oid = x.tgrelid
    WHERE NOT x.tgisinternal
    UNION ALL
    SELECT r.owner, 'p' || x.oid || ':' || x.xmin FROM pg_policy x JOIN fp_rel r ON r.oid = x.polrelid
    UNION ALL
    SELECT r.owner, 'w' || x.oid || ':' || x.xmin FROM pg_rewrite x JOIN fp_rel r ON r.oid = x.ev_class
    UNION ALL
    SELECT r.owner, 'i' || x.indexrelid || ':' || x.xmin FROM pg_index x JOIN fp_rel r ON r.oid = x.indexrelid
    UNION ALL
    SELECT r.owner, 'h' || x.inhrelid || ':' || x.inhparent || ':' || x.xmin FROM pg_inherits x JOIN fp_rel r ON r.oid = x.inhrelid
    UNION ALL
    SELECT r.owner, 'H' || x.inhrelid || ':' || x.inhparent || ':' || x.xmin FROM pg_inherits x JOIN fp_rel r ON r.oid = x.inhparent
    UNION ALL
    SELECT r.owner, 's' || x.seqrelid || ':' || x.xmin FROM pg_sequence x JOIN fp_rel r ON r.oid = x.seqrelid
    UNION ALL
    SELECT r.owner, 'P' || x.partrelid || ':' || x.xmin FROM pg_partitioned_table x JOIN fp_rel r ON r.oid = x.partrelid
    UNION ALL
    SELECT r.owner, 'F' || x.ftrelid || ':' || x.xmin FROM pg_foreign_table x JOIN fp_rel r ON r.oid = x.ftrelid
    UNION ALL  -- comments on the table, its columns, indexes, constraints, triggers, policies, rules
    SELECT o.owner, 'C' || x.classoid || ':' || x.objoid || ':' || x.objsubid || ':' || x.xmin
    FROM pg_description x JOIN fp_obj o ON o.classid = x.classoid AND o.oid = x.objoid
    UNION ALL  -- the other relations and columns the file's statements name, as they are named now
    SELECT o.owner, 'D' || x.classid || ':' || x.objid || ':' || x.refobjid || ':' || x.refobjsubid || ':'
                    || x.deptype::text || ':' || rc.relnamespace || '.' || rc.relname || ':'
                    || CASE WHEN x.refobjsubid <> 0  -- looked up one by one: a join would hash all of pg_attribute
                            THEN coalesce((SELECT ra.attname FROM pg_attribute ra
                                           WHERE ra.attrelid = x.refobjid AND ra.attnum = x.refobjsubid), '')
                            ELSE '' END
    FROM pg_depend x
    JOIN fp_obj o ON o.classid = x.classid AND o.oid = x.objid
    JOIN pg_class rc ON rc.oid = x.refobjid
    LEFT JOIN fp_rel same ON same.oid = x.refobjid AND same.owner = o.owner
    WHERE x.refclassid = 'pg_class'::regclass AND same.oid IS NULL
),
fp_owner AS (
    SELECT f.owner, r.nspname, r.relname, r.relkind, f.fp
    -- a sum of 64-bit hashes: the same for the same tokens in any order, so no sort is needed
    FROM (SELECT owner, sum(hashtextextended(tok, 0))::text AS fp FROM fp_tok GROUP BY owner) f
    JOIN rel r ON r.oid = f.owner
),

-- every table's size class, whatever this run dumps (the fingerprints' document too, for a run
-- that dumps nothing): the power of ten at or below the planner's row count and the table's bytes, so
-- that a size moving within its class changes nothing. Not known: never analyzed; partitioned
-- (its partitions hold the rows)
size_classes AS (
    SELECT coalesce(json_agg(json_build_array(s.nspname, c.relname,
               CASE WHEN c.reltuples < 1 THEN 0 ELSE (10::numeric ^ floor(log(c.reltuples::numeric)))::bigint END,
               CASE WHEN c.relpages <= 0 THEN 0
                    ELSE (10::numeric ^ floor(log(c.relpages::numeric
                          * current_setting('block_size')::numeric)))::bigint END)), '[]') AS doc
    FROM pg_class c JOIN schemas s ON s.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'f') AND NOT c.relispartition AND c.relpersistence <> 't' AND c.reltuples >= 0
),
fp_doc AS (
    SELECT json_build_object(
        'objects', (SELECT coalesce(json_agg(json_build_array(f.owner::bigint, f.nspname, f.relname, f.relkind, f.fp)
                                             ORDER BY f.owner), '[]') FROM fp_owner f),
        'global', (SELECT sum(hashtextextended(tok, 0))::text FROM fp_else),
        -- the oldest transaction still running: rows it or a later one wrote are the next
        -- refresh's guess at what changed (the low 32 bits, as xmin has them)
        'since', (txid_snapshot_xmin(txid_current_snapshot()) & 4294967295)::text,
        -- at this snapshot: what the next refresh compares its quick check with
        'quick', nullif(:'ss_quick', '')) AS doc
),
-- Everything else a dump may print or name: any change here means a whole dump. Objects made by
-- initdb's scripts (12000 and up) count too: the public schema, plpgsql.
fp_else(tok) AS (
    SELECT 'n' || oid || ':' || xmin FROM pg_namespace WHERE oid >= 12000 AND oid NOT IN (SELECT oid FROM tmp_ns)
    UNION ALL  -- the names of the roles this database's objects name (ss_named_roles)
    SELECT 'r' || a.oid || ':' || a.rolname FROM pg_roles a WHERE a.oid = 10 OR a.oid IN :ss_named_roles
    UNION ALL SELECT 'T' || oid || ':' || spcname FROM pg_tablespace
    UNION ALL SELECT 'x' || oid || ':' || xmin FROM pg_proc WHERE oid >= 12000 AND pronamespace NOT IN (SELECT oid FROM tmp_ns)
    UNION ALL SELECT 'g' || aggfnoid::oid || ':' || xmin FROM pg_aggregate WHERE aggfnoid::oid >= 12000
    UNION ALL  -- types, but not a table's row type or an array type, which follow their owners
    SELECT 'y' || t.oid || ':' || t.xmin FROM pg_type t
    WHERE t.oid >= 12000 AND t.typnamespace NOT IN (SELECT oid FROM tmp_ns)
      AND NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = t.typrelid AND c.relkind <> 'c')
      AND NOT EXISTS (SELECT 1 FROM pg_type e WHERE e.typarray = t.oid)
    __ELSE_CATALOGS__
    UNION ALL SELECT 'R' || rngtypid || ':' || xmin FROM pg_range WHERE rngtypid >= 12000
    UNION ALL SELECT 'k' || oid || ':' || xmin FROM pg_constraint WHERE conrelid = 0
    UNION ALL  -- composite types
    SELECT 'c' || c.oid || ':' || c.xmin FROM pg_class c WHERE c.relkind = 'c' AND c.oid >= 12000
    UNION ALL
    SELECT 'a' || a.attrelid || ':' || a.attnum || ':' || a.xmin FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
    WHERE c.relkind = 'c' AND c.oid >= 12000
    UNION ALL SELECT 'J' || mapcfg || ':' || maptokentype || ':' || mapseqno || ':' || xmin FROM pg_ts_config_map
    WHERE mapcfg >= 12000
    UNION ALL SELECT 'U' || umid || ':' || srvid || ':' || umuser || ':' || coalesce(umoptions::text, '')
    FROM pg_user_mappings  -- the catalog itself is for superusers
    UNION ALL SELECT 'I' || classoid || ':' || objoid || ':' || objsubid || ':' || privtype::text || ':' || xmin
    FROM pg_init_privs WHERE objoid >= 12000
    UNION ALL SELECT 'N' || classoid || ':' || objoid || ':' || objsubid || ':' || xmin FROM pg_seclabel
    UNION ALL  -- extension membership (ALTER EXTENSION ADD), DEPENDS ON EXTENSION
    SELECT 'K' || classid || ':' || objid || ':' || objsubid || ':' || refobjid || ':' || deptype::text || ':' || xmin
    FROM pg_depend WHERE deptype IN ('e', 'x')
    UNION ALL  -- comments on everything that is not a relation's or one of its parts'
    SELECT 'cm' || x.classoid || ':' || x.objoid || ':' || x.objsubid || ':' || x.xmin FROM pg_description x
    WHERE x.objoid >= 12000
      AND x.classoid NOT IN ('pg_class'::regclass, 'pg_attrdef'::regclass, 'pg_trigger'::regclass,
                             'pg_policy'::regclass, 'pg_rewrite'::regclass)
      AND NOT (x.classoid = 'pg_constraint'::regclass
               AND EXISTS (SELECT 1 FROM pg_constraint k WHERE k.oid = x.objoid AND k.conrelid <> 0))
    :fp_more
),
-- pg_dump's selection: exact, quoted names (pg_dump's pattern syntax: "" is a literal quote)
dump_args AS (
    SELECT 1 AS ord, x.nspname AS k1, '' AS k2, x.i, x.arg
    FROM (SELECT s.nspname, unnest(ARRAY['-n', '"' || replace(s.nspname, '"', '""') || '"']) AS arg,
                 generate_series(1, 2) AS i
          FROM schemas s, params
          WHERE params.p ->> 'mode' = 'full' AND NOT (params.p ->> 'all_schemas')::boolean
            AND jsonb_typeof(params.p -> 'dump_words') IS DISTINCT FROM 'array') x
    UNION ALL
    -- globs schemasync found safe to hand to pg_dump as its own patterns, in the order given
    SELECT 1, lpad(w.n::text, 8, '0'), '', x.i, x.arg
    FROM params,
         jsonb_array_elements_text(CASE WHEN jsonb_typeof(params.p -> 'dump_words') = 'array'
                                        THEN params.p -> 'dump_words' END) WITH ORDINALITY AS w(word, n),
         LATERAL (SELECT unnest(ARRAY['-n', w.word]) AS arg, generate_series(1, 2) AS i) x
    WHERE params.p ->> 'mode' = 'full' AND jsonb_typeof(params.p -> 'dump_words') = 'array'
    UNION ALL
    SELECT 2, x.nspname, x.relname, x.i, x.arg
    FROM (SELECT r.nspname, r.relname,
                 unnest(ARRAY[CASE WHEN params.p ->> 'mode' IN ('table', 'owners') THEN '-t' ELSE '-T' END,
                              '"' || replace(r.nspname, '"', '""') || '"."' || replace(r.relname, '"', '""') || '"']) AS arg,
                 generate_series(1, 2) AS i
          FROM rel r JOIN owners o ON o.oid = r.oid, params
          WHERE (r.relkind IN ('r', 'p', 'f')  -- a view's or sequence's own file: it alone
                 OR (params.p ->> 'mode' = 'owners' AND r.relkind IN ('v', 'm', 'S') AND o.owner = r.oid))
            AND CASE WHEN params.p ->> 'mode' IN ('table', 'owners') THEN o.owner IN (SELECT oid FROM chosen)
                     ELSE o.owner IN (SELECT oid FROM excluded) END) x
),
meta AS (
    SELECT json_build_object(
        'version', current_setting('server_version_num')::int,
        'database', current_database(),
        'user', current_user,
        'schemas', (SELECT coalesce(json_agg(s.nspname ORDER BY s.nspname), '[]') FROM schemas s),
        'max_locks', current_setting('max_locks_per_transaction')::int
                     * (current_setting('max_connections')::int + current_setting('max_prepared_transactions')::int),
        -- tables a publication names: pg_dump prints that only in a dump of everything (batches)
        'published', (SELECT coalesce(json_agg(DISTINCT pr.prrelid::bigint), '[]') FROM pg_publication_rel pr),
        'tables', (SELECT coalesce(json_agg(json_build_array(
                        r.oid::bigint, r.nspname, r.relname, r.relkind,
                        (SELECT count(*) FROM pg_attribute a
                         WHERE a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped),
                        -- columns: name, type, not null, comment (a scalar lookup on the catalog's index: a
                        -- join here would be hashed once per table). No defaults: pg_get_expr() locks the
                        -- table, and discovery must not wait behind a migration; they come from the files.
                        (SELECT coalesce(json_agg(json_build_array(a.attname, format_type(a.atttypid, a.atttypmod),
                                  a.attnotnull,
                                  (SELECT d.description FROM pg_description d
                                   WHERE d.objoid = a.attrelid AND d.classoid = 'pg_class'::regclass
                                     AND d.objsubid = a.attnum)) ORDER BY a.attnum), '[]')
                         FROM pg_attribute a WHERE a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped),
                        -- primary key columns, in key order
                        (SELECT coalesce(json_agg((SELECT a.attname FROM pg_attribute a
                                                   WHERE a.attrelid = r.oid AND a.attnum = k.attnum) ORDER BY k.i), '[]')
                         FROM pg_constraint c, unnest(c.conkey) WITH ORDINALITY k(attnum, i)
                         WHERE c.conrelid = r.oid AND c.contype = 'p'),
                        -- not obj_description(): a SQL function, planned on each call under the settings above
                        (SELECT d.description FROM pg_description d
                         WHERE d.objoid = r.oid AND d.classoid = 'pg_class'::regclass AND d.objsubid = 0))
                        ORDER BY r.nspname, r.relname), '[]')
                   FROM sel r WHERE r.owner = r.oid AND r.relkind IN ('r', 'p', 'f')),
        'sizes', (SELECT doc FROM size_classes),
        'foreign_keys', (SELECT coalesce(json_agg(json_build_array(
                        fn.nspname, fc.relname,
                        (SELECT json_agg((SELECT a.attname FROM pg_attribute a
                                          WHERE a.attrelid = c.conrelid AND a.attnum = k.attnum) ORDER BY k.i)
                         FROM unnest(c.conkey) WITH ORDINALITY k(attnum, i)),
                        tn.nspname, tc.relname,
                        (SELECT json_agg((SELECT a.attname FROM pg_attribute a
                                          WHERE a.attrelid = c.confrelid AND a.attnum = k.attnum) ORDER BY k.i)
                         FROM unnest(c.confkey) WITH ORDINALITY k(attnum, i)),
                        c.confdeltype::text, c.confupdtype::text, c.conname)
                        ORDER BY fn.nspname, fc.relname, c.conname), '[]')
                   FROM fk JOIN pg_constraint c ON c.oid = fk.oid
                   JOIN pg_class fc ON fc.oid = c.conrelid JOIN pg_namespace fn ON fn.oid = fc.relnamespace
                   JOIN pg_class tc ON tc.oid = c.confrelid JOIN pg_namespace tn ON tn.oid = tc.relnamespace),
        -- views and SQL-bodied functions that use a selected table: what dropping a column breaks
        'dependents', (SELECT coalesce(json_agg(DISTINCT jsonb_build_array(d.refobjid::bigint, dep.kind, dep.nspname,
                                                                         dep.name)), '[]')
                       FROM pg_depend d
                       JOIN (SELECT 'pg_rewrite'::regclass AS classid, rw.oid, CASE v.relkind WHEN 'm' THEN
                                    'materialized view' ELSE 'view' END AS kind, vn.nspname, v.relname AS name, v.oid AS self
                             FROM pg_rewrite rw JOIN pg_class v ON v.oid = rw.ev_class
                             JOIN pg_namespace vn ON vn.oid = v.relnamespace
                             WHERE v.relkind IN ('v', 'm') AND v.relpersistence <> 't'
                             UNION ALL
                             SELECT 'pg_proc'::regclass, p.oid, 'function', pn.nspname, p.proname, 0
                             FROM pg_proc p JOIN pg_namespace pn ON pn.oid = p.pronamespace
                             WHERE pn.nspname <> 'pg_catalog' AND pn.nspname <> 'information_schema'
                               AND pn.oid NOT IN (SELECT oid FROM tmp_ns)) dep
                         ON dep.classid = d.classid AND dep.oid = d.objid
                       WHERE d.refclassid = 'pg_class'::regclass AND d.deptype = 'n' AND dep.self <> d.refobjid
                         AND d.refobjid IN (SELECT r.oid FROM sel r WHERE r.owner = r.oid AND r.relkind IN ('r', 'p', 'f'))),
        'relations', (SELECT coalesce(json_agg(json_build_array(r.oid::bigint, r.nspname, r.relname, r.relkind,
                                                              r.owner::bigint) ORDER BY r.oid), '[]') FROM sel r),
        'subobjects', (SELECT coalesce(json_agg(json_build_array(s.classid::bigint, s.oid::bigint, s.relid::bigint)
                                               ORDER BY s.classid, s.oid), '[]') FROM sub s),
        'excluded', (SELECT coalesce(json_agg(json_build_array(t.nspname, t.relname) ORDER BY t.nspname, t.relname), '[]')
                     FROM roots t WHERE t.oid IN (SELECT oid FROM excluded)),
        'fingerprints', (SELECT CASE WHEN (params.p ->> 'fingerprints')::boolean THEN (SELECT doc FROM fp_doc) END
                         FROM params),
        'matches', (SELECT coalesce(json_agg(json_build_array(t.nspname, t.relname) ORDER BY t.nspname, t.relname), '[]')
                    FROM roots t WHERE t.oid IN (SELECT oid FROM target))
    ) AS doc
)
SELECT CASE
           WHEN params.p ->> 'mode' = 'fingerprints' THEN params.p ->> 'mode'
           WHEN params.p ->> 'mode' = 'list' THEN 'nodump'
           WHEN params.p ->> 'mode' = 'owners' AND (SELECT count(*) FROM chosen) = 0 THEN 'nodump'
           WHEN params.p ->> 'mode' = 'table' AND (SELECT count(*) FROM chosen) = 0 THEN 'nodump'
           WHEN params.p ->> 'mode' = 'full' AND NOT (params.p ->> 'all_schemas')::boolean
                AND NOT EXISTS (SELECT 1 FROM schemas) THEN 'nodump'
           ELSE 'dump' END
       || ' ' || (current_setting('server_version_num')::int / 10000)::text || E'\n'
       -- fingerprints only: what an incremental run compares first, and nothing else
       || CASE WHEN params.p ->> 'mode' = 'fingerprints'
               THEN (SELECT json_build_object('version', current_setting('server_version_num')::int,
                                              'database', current_database(), 'user', current_user,
                                              'tables', '[]'::json, 'relations', '[]'::json, 'subobjects', '[]'::json,
                                              'sizes', (SELECT doc FROM size_classes),
                                              'fingerprints', (SELECT doc FROM fp_doc))::text)
               ELSE (SELECT doc::jsonb::text FROM meta) END || E'\n'
       || CASE WHEN params.p ->> 'mode' = 'fingerprints' THEN '' ELSE
          coalesce((SELECT string_agg('''' || replace(arg, '''', '''"''"''') || '''', ' ' ORDER BY ord, k1, k2, i)
                    FROM dump_args), '') END
FROM params;
\if :ss_export
SELECT 'ss-held ' || :'ss_export_id';
\else
COMMIT;
\endif
