-- migrate:up

-- Staff who sign in to the operator console (web/). Applicants never do: they use
-- the API with their organisation's key. Passwords are argon2id hashes; failed
-- sign-ins count up to a lockout, and every sign-in, failure and lockout is also
-- an event in the account's own stream (domain_event, stream 'staff:<id>').
CREATE TABLE staff_account (
    id                 text PRIMARY KEY CHECK (id ~ '^stf_[a-z0-9]{20,32}$'),
    username           text NOT NULL UNIQUE CHECK (username ~ '^[a-z0-9][a-z0-9._-]{2,63}$'),
    display_name       text NOT NULL CHECK (length(display_name) BETWEEN 1 AND 100),
    role               text NOT NULL CHECK (role IN ('operator', 'admin', 'viewer')),
    password_hash      text NOT NULL,
    created_by         text NOT NULL,
    created_at         timestamptz NOT NULL DEFAULT now(),
    disabled_at        timestamptz,
    failed_attempts    integer NOT NULL DEFAULT 0 CHECK (failed_attempts >= 0),
    locked_until       timestamptz
);

-- Signed-in browsers. Only a SHA-256 of the cookie's token is kept, so a copy of
-- this table signs nobody in. The CSRF token is per session and travels in
-- every form and htmx request.
CREATE TABLE staff_session (
    token_hash    bytea PRIMARY KEY CHECK (length(token_hash) = 32),
    staff_id      text NOT NULL REFERENCES staff_account (id),
    csrf_token    text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_seen_at  timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX staff_session_staff_idx ON staff_session (staff_id);

-- A reviewer's claim on an application in the queue, so that two reviewers do
-- not work the same case. Advisory: the workflow still decides which decision
-- counts if two are sent.
CREATE TABLE review_claim (
    application_id  text PRIMARY KEY REFERENCES application (id),
    staff_id        text NOT NULL REFERENCES staff_account (id),
    claimed_at      timestamptz NOT NULL DEFAULT now()
);

-- The application form as submitted and as each resubmission, AES-GCM encrypted
-- with the payload keys (it holds ID numbers and phones in clear). Everything
-- else keeps only the masked summary; this is what an operator's audited
-- "reveal" of one field reads. A row is accepted once the workflow took it.
CREATE TABLE application_form (
    application_id     text NOT NULL REFERENCES application (id),
    seq                integer NOT NULL CHECK (seq >= 1),
    accepted           boolean NOT NULL DEFAULT false,
    encryption_key_id  text NOT NULL,
    content            bytea NOT NULL,
    created_at         timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (application_id, seq)
);

-- The console's work list: what waits for staff (a decision or a real-name
-- verification), oldest deadline first.
CREATE INDEX registration_staff_work_idx
    ON registration (next_deadline, id)
    WHERE waiting_for IN ('operator_decision', 'verification');

-- The dashboard's "applications per day" and "time in review" read decisions and
-- submissions by time; domain_event_type_idx (event_type, occurred_at) serves both.
CREATE INDEX application_created_idx ON application (created_at);

-- migrate:down

DROP INDEX application_created_idx;
DROP INDEX registration_staff_work_idx;
DROP TABLE application_form;
DROP TABLE review_claim;
DROP TABLE staff_session;
DROP TABLE staff_account;
