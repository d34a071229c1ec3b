-- Security (#12): who a database role is, and who owned a meter when.
-- Same in both storage modes. Row-level security itself is applied by
-- parkcarbon.security.rls after the numbered migrations (every `db migrate`), because
-- it covers every table with an enterprise_id or meter_id column, including tables
-- later migrations add.

-- Which enterprise a login role reads, looked up through current_user (a session
-- cannot change it, unlike a GUC). scope 'park': every row (owner, ingest, service,
-- reader). Maintained by `db migrate`; readable only by the owner.
CREATE TABLE security_roles (
    role_name      text PRIMARY KEY,
    scope          text NOT NULL CHECK (scope IN ('park', 'enterprise')),
    enterprise_id  text,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    CHECK ((scope = 'enterprise') = (enterprise_id IS NOT NULL))
);

-- Policies call these through a scalar subquery, (SELECT security_enterprises(current_user)),
-- so they run once per statement (an InitPlan), not once per row. SECURITY DEFINER:
-- the enterprise roles cannot read security_roles itself.
CREATE FUNCTION security_is_park(role_name name) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    SELECT EXISTS (SELECT 1 FROM public.security_roles r
                   WHERE r.role_name = $1 AND r.scope = 'park')
$$;

CREATE FUNCTION security_enterprises(role_name name) RETURNS text[]
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    SELECT coalesce(array_agg(r.enterprise_id), '{}')
    FROM public.security_roles r
    WHERE r.role_name = $1 AND r.scope = 'enterprise'
$$;

-- Meter ownership with validity periods: [valid_from, valid_to). A meter moved to
-- another enterprise in the registry keeps its history with the old owner; the new
-- owner sees only what was measured after the move (the time of the `db migrate`
-- that synced the change). Kept by a trigger on meters, so every writer of the
-- registry (sync, tests, an operator's UPDATE) keeps it right. A meter's first period
-- starts at 1900-01-01 (all of its history; not -infinity, which clients such as
-- Python cannot load).
CREATE TABLE meter_ownership (
    meter_id       text NOT NULL,
    enterprise_id  text NOT NULL,
    valid_from     timestamptz NOT NULL,
    valid_to       timestamptz,
    PRIMARY KEY (meter_id, valid_from),
    CHECK (valid_to IS NULL OR valid_to > valid_from)
);
CREATE UNIQUE INDEX meter_ownership_current_idx ON meter_ownership (meter_id)
    WHERE valid_to IS NULL;
CREATE INDEX meter_ownership_enterprise_idx ON meter_ownership (enterprise_id, meter_id);

INSERT INTO meter_ownership (meter_id, enterprise_id, valid_from)
SELECT id, enterprise_id, '1900-01-01 00:00:00+00' FROM meters;

CREATE FUNCTION meter_ownership_track() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.enterprise_id IS NOT DISTINCT FROM OLD.enterprise_id
       AND NEW.id = OLD.id THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'INSERT' THEN
        -- a new meter: all its history belongs to its first owner
        INSERT INTO meter_ownership (meter_id, enterprise_id, valid_from)
        VALUES (NEW.id, NEW.enterprise_id, '1900-01-01 00:00:00+00')
        ON CONFLICT (meter_id, valid_from) DO UPDATE
        SET enterprise_id = excluded.enterprise_id, valid_to = NULL;
        RETURN NULL;
    END IF;
    -- moved twice in one transaction: the later move replaces the earlier one
    DELETE FROM meter_ownership
    WHERE meter_id = NEW.id AND valid_to IS NULL AND valid_from >= now();
    UPDATE meter_ownership SET valid_to = now()
    WHERE meter_id = NEW.id AND valid_to IS NULL;
    INSERT INTO meter_ownership (meter_id, enterprise_id, valid_from)
    VALUES (NEW.id, NEW.enterprise_id, now());
    RETURN NULL;
END
$$;

CREATE TRIGGER meter_ownership_insert AFTER INSERT ON meters
    FOR EACH ROW EXECUTE FUNCTION meter_ownership_track();
CREATE TRIGGER meter_ownership_update AFTER UPDATE OF enterprise_id ON meters
    FOR EACH ROW EXECUTE FUNCTION meter_ownership_track();
