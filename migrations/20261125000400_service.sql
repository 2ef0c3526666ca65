-- migrate:up

-- The service after activation, on the registration read model: what the number
-- does now and why, next to the stage/status the registration left it in
-- (stage stays 'active' for the whole service). balance_fen (foundation) holds
-- the prepaid balance from activation on.
ALTER TABLE registration
    ADD COLUMN service_state text CHECK (service_state IN (
        'active', 'restricted', 'suspended', 'frozen', 'quarantined', 'released')),
    ADD COLUMN arrears_stage text CHECK (arrears_stage IN (
        'none', 'grace', 'restricted', 'suspended', 'frozen', 'reclaimed')),
    ADD COLUMN realname_stage text CHECK (realname_stage IN (
        'current', 'overdue', 'restricted', 'suspended')),
    ADD COLUMN realname_due_at timestamptz;

-- Dashboards: numbers per service state and carrier.
CREATE INDEX registration_service_state_idx
    ON registration (service_state, carrier_code) WHERE service_state IS NOT NULL;

-- The fake carrier's side of service changes (restrict, suspend, freeze, resume,
-- deprovision), next to its provisioning tables. Injected faults are shared:
-- fake_carrier_fault applies per number to every call.
--
-- One row per number: the state the carrier has it in.
CREATE TABLE fake_carrier_line (
    number           char(10) PRIMARY KEY,
    carrier_code     text NOT NULL,
    state            text NOT NULL CHECK (state IN (
                         'active', 'restricted', 'suspended', 'frozen', 'deprovisioned')),
    last_request_id  text NOT NULL,
    updated_at       timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- Each request the carrier carried out, once: a retried request finds its row
-- and changes nothing (applies never exceeds 1).
CREATE TABLE fake_carrier_service_request (
    request_id    text PRIMARY KEY,
    number        char(10) NOT NULL,
    action        text NOT NULL CHECK (action IN ('resume', 'restrict', 'suspend', 'freeze', 'deprovision')),
    applies       integer NOT NULL DEFAULT 1,
    applied_at    timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE INDEX fake_carrier_service_request_number_idx ON fake_carrier_service_request (number, applied_at);

-- Every service call received, with what it answered (including failures).
CREATE TABLE fake_carrier_service_call (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    request_id  text NOT NULL,
    number      char(10) NOT NULL,
    action      text NOT NULL,
    outcome     text NOT NULL,
    called_at   timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE INDEX fake_carrier_service_call_number_idx ON fake_carrier_service_call (number);

-- migrate:down

DROP TABLE fake_carrier_service_call;
DROP TABLE fake_carrier_service_request;
DROP TABLE fake_carrier_line;
DROP INDEX registration_service_state_idx;
ALTER TABLE registration
    DROP COLUMN realname_due_at,
    DROP COLUMN realname_stage,
    DROP COLUMN arrears_stage,
    DROP COLUMN service_state;
