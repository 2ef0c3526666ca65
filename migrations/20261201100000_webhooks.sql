-- migrate:up

-- Webhooks (docs/webhooks.md). The event log stays the only source: a trigger on
-- domain_event writes one delivery row per subscribed endpoint in the same
-- transaction as the event, so a delivery exists exactly when its event
-- committed (see activities/webhooks.py for why a trigger and not a cursor).

-- An organisation's endpoint. `routes` is derived from `event_types` by
-- domain/webhooks.py: {domain event type: [webhook event types]}, so that the
-- trigger below needs no copy of the catalogue. The signing secrets are
-- AES-GCM encrypted with the payload keys (`*_key_id` names the key); the
-- previous secret keeps signing until `previous_secret_expires_at` (rotation).
CREATE TABLE webhook_endpoint (
    id                          text PRIMARY KEY CHECK (id ~ '^whe_[a-z0-9]{26}$'),
    organisation_id             text NOT NULL,
    url                         text NOT NULL CHECK (length(url) BETWEEN 1 AND 2048),
    description                 text CHECK (length(description) <= 500),
    event_types                 text[] NOT NULL CHECK (cardinality(event_types) >= 1),
    routes                      jsonb NOT NULL,
    enabled                     boolean NOT NULL DEFAULT true,
    secret_key_id               text NOT NULL,
    secret                      bytea NOT NULL,
    previous_secret_key_id      text,
    previous_secret             bytea,
    previous_secret_expires_at  timestamptz,
    secret_rotated_at           timestamptz,
    -- Why the endpoint is disabled: by its owner, because it answered 410 Gone,
    -- or because nothing was delivered to it for the whole retry window.
    disabled_reason             text CHECK (disabled_reason IN ('owner', 'gone', 'failing')),
    disabled_detail             text,
    disabled_at                 timestamptz,
    -- First failed attempt since the last successful one; NULL while healthy.
    failing_since               timestamptz,
    created_by                  text NOT NULL,
    created_at                  timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at                  timestamptz NOT NULL DEFAULT clock_timestamp(),
    CONSTRAINT webhook_endpoint_disabled_has_reason CHECK (enabled = (disabled_reason IS NULL))
);

CREATE INDEX webhook_endpoint_org_idx ON webhook_endpoint (organisation_id, created_at, id);

-- "Deadline approaching" notices: not events of a registration's stream (its
-- workflow owns the stream's versions), so the sweeper records each one here,
-- once per application, deadline instant and kind.
CREATE TABLE deadline_notice (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    application_id   text NOT NULL,
    organisation_id  text NOT NULL,
    deadline_at      timestamptz NOT NULL,
    kind             text NOT NULL,
    stage            text NOT NULL,
    status           text NOT NULL,
    noticed_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    UNIQUE (application_id, deadline_at, kind)
);

CREATE INDEX deadline_notice_org_idx ON deadline_notice (organisation_id, noticed_at);

-- Order of deliveries per endpoint and application: taken at insert, and a
-- stream has one writer at a time, so it follows the stream's versions.
CREATE SEQUENCE webhook_delivery_seq;

-- One message to one endpoint: its id is the `webhook-id` of every attempt.
CREATE TABLE webhook_delivery (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    seq               bigint NOT NULL DEFAULT nextval('webhook_delivery_seq'),
    endpoint_id       text NOT NULL REFERENCES webhook_endpoint (id) ON DELETE CASCADE,
    application_id    text NOT NULL,
    event_type        text NOT NULL,
    event_position    bigint,
    notice_id         bigint REFERENCES deadline_notice (id),
    status            text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'succeeded', 'failed')),
    attempts          integer NOT NULL DEFAULT 0,
    -- Failed attempts in the current retry window: what the backoff counts.
    window_failures   integer NOT NULL DEFAULT 0,
    next_attempt_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    -- Start of the current retry window (reset by a redelivery or a replay).
    first_attempt_at  timestamptz,
    -- Taken by the sender for longer than one attempt can last: two senders
    -- never send the same delivery at once.
    leased_until      timestamptz,
    payload           jsonb,
    last_status_code  integer,
    last_error        text,
    ended_at          timestamptz,
    failure_reason    text,
    created_at        timestamptz NOT NULL DEFAULT clock_timestamp(),
    CONSTRAINT webhook_delivery_one_source CHECK ((event_position IS NULL) <> (notice_id IS NULL))
);

CREATE UNIQUE INDEX webhook_delivery_event_uq
    ON webhook_delivery (endpoint_id, event_position, event_type) WHERE event_position IS NOT NULL;
CREATE UNIQUE INDEX webhook_delivery_notice_uq
    ON webhook_delivery (endpoint_id, notice_id, event_type) WHERE notice_id IS NOT NULL;
-- The sender's work list: the oldest pending delivery of each application.
CREATE INDEX webhook_delivery_pending_idx
    ON webhook_delivery (endpoint_id, application_id, seq) WHERE status = 'pending';
-- Endpoints with deliveries due (the safety-net wake-up).
CREATE INDEX webhook_delivery_due_idx ON webhook_delivery (next_attempt_at) WHERE status = 'pending';
-- The delivery log, newest first.
CREATE INDEX webhook_delivery_log_idx ON webhook_delivery (endpoint_id, seq);

-- Every attempt, with what the receiver answered (body truncated).
CREATE TABLE webhook_attempt (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    delivery_id    uuid NOT NULL REFERENCES webhook_delivery (id) ON DELETE CASCADE,
    number         integer NOT NULL,
    attempted_at   timestamptz NOT NULL,
    status_code    integer,
    latency_ms     double precision NOT NULL,
    response_body  text,
    error          text,
    succeeded      boolean NOT NULL
);

CREATE INDEX webhook_attempt_delivery_idx ON webhook_attempt (delivery_id, id);

-- Deliveries of one source (an event position or a notice) to every enabled
-- endpoint of the organisation that routes `source_type`, in the catalogue's
-- order; each endpoint's sender is woken once the transaction commits.
CREATE FUNCTION webhook_enqueue(org text, app text, source_type text, pos bigint, notice bigint)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    endpoint text;
BEGIN
    FOR endpoint IN
        WITH queued AS (
            INSERT INTO webhook_delivery (endpoint_id, application_id, event_type, event_position, notice_id)
            SELECT e.id, app, t.type, pos, notice
            FROM webhook_endpoint e
            CROSS JOIN LATERAL jsonb_array_elements_text(e.routes -> source_type) WITH ORDINALITY AS t(type, n)
            WHERE e.organisation_id = org AND e.enabled
            ORDER BY e.id, t.n
            RETURNING endpoint_id)
        SELECT DISTINCT endpoint_id FROM queued
    LOOP
        PERFORM pg_notify('webhook_delivery', endpoint);
    END LOOP;
END;
$$;

-- The organisation of a stream: the read model's row, else the API's
-- application row, else the submission's own payload (an application refused
-- before it had a read-model row).
CREATE FUNCTION webhook_fan_out_event() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    org text;
BEGIN
    SELECT organisation_id INTO org FROM registration WHERE id = NEW.stream_id;
    IF org IS NULL THEN
        SELECT organisation_id INTO org FROM application WHERE id = NEW.stream_id;
    END IF;
    IF org IS NULL THEN
        org := NEW.payload ->> 'organisation_id';
    END IF;
    IF org IS NOT NULL THEN
        PERFORM webhook_enqueue(org, NEW.stream_id, NEW.event_type, NEW.position, NULL);
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER domain_event_webhooks
    AFTER INSERT ON domain_event
    FOR EACH ROW EXECUTE FUNCTION webhook_fan_out_event();

CREATE FUNCTION webhook_fan_out_notice() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM webhook_enqueue(NEW.organisation_id, NEW.application_id, 'DeadlineApproaching', NULL, NEW.id);
    RETURN NULL;
END;
$$;

CREATE TRIGGER deadline_notice_webhooks
    AFTER INSERT ON deadline_notice
    FOR EACH ROW EXECUTE FUNCTION webhook_fan_out_notice();

-- migrate:down

DROP TRIGGER deadline_notice_webhooks ON deadline_notice;
DROP FUNCTION webhook_fan_out_notice();
DROP TRIGGER domain_event_webhooks ON domain_event;
DROP FUNCTION webhook_fan_out_event();
DROP FUNCTION webhook_enqueue(text, text, text, bigint, bigint);
DROP TABLE webhook_attempt;
DROP TABLE webhook_delivery;
DROP SEQUENCE webhook_delivery_seq;
DROP TABLE deadline_notice;
DROP TABLE webhook_endpoint;
