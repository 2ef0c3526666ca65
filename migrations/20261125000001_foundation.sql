-- migrate:up

-- Carriers and the prefix table that maps a 400 number to its carrier. Kept as
-- data: the assignment of prefixes has changed over time.
CREATE TABLE carrier (
    code        text PRIMARY KEY CHECK (code ~ '^[a-z][a-z0-9_]*$'),
    name        text NOT NULL,
    name_zh     text NOT NULL
);

CREATE TABLE carrier_prefix (
    prefix       text PRIMARY KEY CHECK (prefix ~ '^400[0-9]{1,4}$'),
    carrier_code text NOT NULL REFERENCES carrier (code)
);

INSERT INTO carrier (code, name, name_zh) VALUES
    ('china_unicom', 'China Unicom', '中国联通'),
    ('china_telecom', 'China Telecom', '中国电信'),
    ('china_mobile', 'China Mobile', '中国移动');

INSERT INTO carrier_prefix (prefix, carrier_code) VALUES
    ('4000', 'china_unicom'), ('4006', 'china_unicom'),
    ('4008', 'china_telecom'), ('4009', 'china_telecom'),
    ('4001', 'china_mobile'), ('4007', 'china_mobile');

-- The national number inventory: one row per number, so a number can never be
-- assigned twice; the holder columns say to whom it is held or allocated.
CREATE TABLE number_inventory (
    number                 char(10) PRIMARY KEY CHECK (number ~ '^400[0-9]{7}$'),
    carrier_code           text NOT NULL REFERENCES carrier (code),
    status                 text NOT NULL DEFAULT 'available' CHECK (status IN (
                               'available', 'held', 'allocated', 'active', 'restricted',
                               'suspended', 'frozen', 'quarantined', 'retired')),
    tier                   text NOT NULL,
    tags                   text[] NOT NULL DEFAULT '{}',
    has_four               boolean NOT NULL,
    min_monthly_spend_fen  bigint NOT NULL CHECK (min_monthly_spend_fen >= 0),
    registration_id        text,
    hold_expires_at        timestamptz,
    quarantine_until       timestamptz,
    status_changed_at      timestamptz NOT NULL DEFAULT now(),
    version                bigint NOT NULL DEFAULT 0,
    -- A number that is held, allocated or in service always names its registration;
    -- an available, quarantined or retired one never does.
    CONSTRAINT number_holder_matches_status CHECK (
        (status IN ('held', 'allocated', 'active', 'restricted', 'suspended', 'frozen'))
            = (registration_id IS NOT NULL)),
    CONSTRAINT number_hold_has_expiry CHECK (status <> 'held' OR hold_expires_at IS NOT NULL),
    CONSTRAINT number_quarantine_has_expiry CHECK (status <> 'quarantined' OR quarantine_until IS NOT NULL)
);

-- One registration holds at most one number at a time.
CREATE UNIQUE INDEX number_inventory_one_per_registration
    ON number_inventory (registration_id) WHERE registration_id IS NOT NULL;

-- Append-only log of domain events: the audit trail regulators and dashboards
-- read for years. (stream_id, version) is the optimistic concurrency check;
-- event_id makes a retried append a no-op; position orders the global feed.
CREATE TABLE domain_event (
    position        bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    stream_id       text NOT NULL,
    version         integer NOT NULL CHECK (version >= 1),
    event_id        uuid NOT NULL UNIQUE,
    event_type      text NOT NULL,
    actor           text NOT NULL,
    actor_role      text NOT NULL,
    reason          text,
    correlation_id  text NOT NULL,
    payload         jsonb NOT NULL DEFAULT '{}'::jsonb,
    occurred_at     timestamptz NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (stream_id, version)
);

CREATE INDEX domain_event_type_idx ON domain_event (event_type, occurred_at);

CREATE FUNCTION domain_event_is_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'domain_event is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER domain_event_append_only
    BEFORE UPDATE OR DELETE ON domain_event
    FOR EACH ROW EXECUTE FUNCTION domain_event_is_append_only();

CREATE TRIGGER domain_event_no_truncate
    BEFORE TRUNCATE ON domain_event
    FOR EACH STATEMENT EXECUTE FUNCTION domain_event_is_append_only();

-- Read model of registrations for dashboards and API listings, updated in the
-- same transaction that appends each event.
CREATE TABLE registration (
    id                  text PRIMARY KEY,
    workflow_id         text NOT NULL UNIQUE,
    organisation_id     text NOT NULL,
    carrier_code        text NOT NULL REFERENCES carrier (code),
    company_name        text NOT NULL,
    credit_code         text NOT NULL,
    number              char(10),
    stage               text NOT NULL,
    status              text NOT NULL,
    waiting_for         text,
    next_deadline       timestamptz,
    overdue             boolean NOT NULL DEFAULT false,
    tier                text,
    min_monthly_spend_fen bigint,
    first_prepayment_fen  bigint,
    balance_fen         bigint NOT NULL DEFAULT 0,
    last_event_version  integer NOT NULL DEFAULT 0,
    summary             jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at          timestamptz NOT NULL,
    updated_at          timestamptz NOT NULL
);

CREATE INDEX registration_stage_idx ON registration (stage, carrier_code);
CREATE INDEX registration_org_idx ON registration (organisation_id, created_at, id);
CREATE INDEX registration_created_idx ON registration (created_at, id);

-- migrate:down

DROP TABLE registration;
DROP TRIGGER domain_event_no_truncate ON domain_event;
DROP TRIGGER domain_event_append_only ON domain_event;
DROP TABLE domain_event;
DROP FUNCTION domain_event_is_append_only();
DROP TABLE number_inventory;
DROP TABLE carrier_prefix;
DROP TABLE carrier;
