-- migrate:up

-- Reading one registration's events in order, and the dashboards' "what is
-- overdue / due next" lists.
CREATE INDEX registration_deadline_idx ON registration (next_deadline) WHERE next_deadline IS NOT NULL;
CREATE INDEX registration_overdue_idx ON registration (carrier_code, next_deadline) WHERE overdue;

-- The fake carrier serves tests and the dev stack in place of a real carrier
-- provisioning API. Its state lives here rather than in memory so that a test
-- or a developer can inject failures into a worker running in another process,
-- and so that it survives a worker restart the way a real carrier would.
CREATE TABLE fake_carrier_order (
    request_id      text PRIMARY KEY,
    number          char(10) NOT NULL,
    carrier_code    text NOT NULL,
    status          text NOT NULL CHECK (status IN ('provisioned', 'cancelled')),
    reference       text NOT NULL,
    -- How many times the carrier did the provisioning work for this request:
    -- idempotency means it never exceeds 1, however often the call is retried.
    provisions      integer NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at      timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- Every call the fake carrier received, with what it answered.
CREATE TABLE fake_carrier_call (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    request_id  text NOT NULL,
    number      char(10) NOT NULL,
    operation   text NOT NULL CHECK (operation IN ('provision', 'cancel')),
    outcome     text NOT NULL,
    called_at   timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE INDEX fake_carrier_call_request_idx ON fake_carrier_call (request_id);

-- Injected faults, per number: the next `fail_times` calls fail as "carrier
-- unavailable" (retryable), `reject` makes every call a permanent refusal, and
-- `delay_ms` makes each call slow (to stop a worker in the middle of one).
CREATE TABLE fake_carrier_fault (
    number      char(10) PRIMARY KEY,
    fail_times  integer NOT NULL DEFAULT 0 CHECK (fail_times >= 0),
    reject      boolean NOT NULL DEFAULT false,
    delay_ms    integer NOT NULL DEFAULT 0 CHECK (delay_ms >= 0)
);

-- migrate:down

DROP TABLE fake_carrier_fault;
DROP TABLE fake_carrier_call;
DROP TABLE fake_carrier_order;
DROP INDEX registration_overdue_idx;
DROP INDEX registration_deadline_idx;
