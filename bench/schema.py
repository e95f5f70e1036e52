"""Generated, realistic schemas of N tables for the benchmark."""

from __future__ import annotations

import random

TYPES = ["text", "integer", "bigint", "timestamptz", "numeric(12,2)", "boolean", "jsonb", "date", "uuid", "mood"]


def schema_sql(n: int, seed: int = 7) -> str:
    rnd = random.Random(seed)
    out = [
        "SET client_min_messages = warning;",
        "CREATE TYPE mood AS ENUM ('ok', 'meh', 'bad');",
        "CREATE TYPE status AS ENUM ('new', 'active', 'closed');",
        "CREATE SCHEMA IF NOT EXISTS billing;",
        "CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS "
        "$$BEGIN NEW.updated_at := now(); RETURN NEW; END$$;",
    ]
    partitioned = {n // 3, n // 2, (2 * n) // 3} if n >= 30 else set()
    for i in range(n):
        schema = "billing" if i % 20 == 7 else "public"
        name = f"{schema}.t{i:05d}"
        if i in partitioned:
            out.append(
                f"CREATE TABLE {name} (id bigint NOT NULL, at date NOT NULL, v text, "
                f"PRIMARY KEY (id, at)) PARTITION BY RANGE (at);"
            )
            for y in range(2022, 2026):
                out.append(
                    f"CREATE TABLE {schema}.t{i:05d}_{y} PARTITION OF {name} "
                    f"FOR VALUES FROM ('{y}-01-01') TO ('{y + 1}-01-01');"
                )
            continue
        cols = ["id serial PRIMARY KEY"]
        for c in range(rnd.randint(3, 9)):
            typ = rnd.choice(TYPES)
            cols.append(f"c{c} {typ}{' NOT NULL' if rnd.random() < 0.3 and typ != 'mood' else ''}")
        cols.append("updated_at timestamptz NOT NULL DEFAULT now()")
        if i > 0 and rnd.random() < 0.7:
            parent = rnd.randrange(max(0, i - 200), i)
            if parent not in partitioned:
                pschema = "billing" if parent % 20 == 7 else "public"
                cols.append(f"parent_id integer REFERENCES {pschema}.t{parent:05d}(id) ON DELETE CASCADE")
        if rnd.random() < 0.3:
            cols.append("CHECK (id > 0)")
        out.append(f"CREATE TABLE {name} ({', '.join(cols)});")
        out.append(f"CREATE INDEX ON {name} (updated_at);")
        if rnd.random() < 0.3:
            out.append(f"COMMENT ON TABLE {name} IS 'table number {i}';")
        if rnd.random() < 0.05:
            out.append(f"CREATE TRIGGER t{i:05d}_touch BEFORE UPDATE ON {name} FOR EACH ROW EXECUTE FUNCTION touch();")
        if i % 50 == 49:
            out.append(f"CREATE VIEW {schema}.v{i:05d} AS SELECT id, updated_at FROM {name};")
    return "\n".join(out) + "\n"
