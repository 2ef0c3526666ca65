-- migrate:up

-- Webhooks carry registrations only. The event log also holds the console's
-- audit streams (staff:<id> for sign-ins, access:<application id> for reveals
-- of personal data); their events must never reach a customer, whatever they
-- carry, and need none of the lookups below. A registration's stream is its
-- application id, app_<...> (api/ids.py).
CREATE OR REPLACE FUNCTION webhook_fan_out_event() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    org text;
BEGIN
    IF NEW.stream_id NOT LIKE 'app\_%' THEN
        RETURN NULL;
    END IF;
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

-- migrate:down

-- The function as 20261201100000_webhooks.sql made it (its own down drops it).
CREATE OR REPLACE FUNCTION webhook_fan_out_event() RETURNS trigger
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
