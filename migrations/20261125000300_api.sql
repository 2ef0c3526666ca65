-- migrate:up

-- API keys. Only an HMAC of the whole token is stored (keyed with API_KEY_PEPPER),
-- so a copy of this table cannot be turned back into working keys. The id is the
-- public part of the token and is what logs, audit entries and the CLI show.
CREATE TABLE api_key (
    id               text PRIMARY KEY CHECK (id ~ '^[a-z0-9]{12}$'),
    secret_hash      bytea NOT NULL CHECK (length(secret_hash) = 32),
    role             text NOT NULL CHECK (role IN ('applicant', 'operator', 'admin', 'viewer')),
    organisation_id  text CHECK (organisation_id ~ '^[A-Za-z0-9_.:-]{1,64}$'),
    name             text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    created_by       text NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    revoked_at       timestamptz,
    -- An applicant key acts for exactly one organisation; staff keys for none.
    CONSTRAINT api_key_org_matches_role CHECK ((role = 'applicant') = (organisation_id IS NOT NULL))
);

CREATE INDEX api_key_org_idx ON api_key (organisation_id) WHERE organisation_id IS NOT NULL;

-- One row per submitted application, written before its workflow starts. The id
-- is allocated here once per (organisation, Idempotency-Key), and the workflow id
-- is derived from it, so a retried or concurrent duplicate POST finds this row
-- instead of starting a second workflow.
CREATE TABLE application (
    id                   text PRIMARY KEY CHECK (id ~ '^app_[a-z0-9]{20,32}$'),
    organisation_id      text NOT NULL,
    workflow_id          text NOT NULL UNIQUE,
    carrier_code         text NOT NULL,
    company_name         text NOT NULL,
    submitted_by         text NOT NULL,
    -- Set once Temporal has accepted the workflow start; until then a retry with
    -- the same Idempotency-Key (re)starts it.
    workflow_started_at  timestamptz,
    created_at           timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE INDEX application_org_created_idx ON application (organisation_id, created_at, id);

-- Idempotency keys of state-changing POSTs, scoped to the caller's organisation.
-- request_hash is a SHA-256 of the canonical request: the same key with a
-- different request is a client bug and answered 409, never silently replayed.
CREATE TABLE idempotency_key (
    organisation_id  text NOT NULL,
    key              text NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    operation        text NOT NULL,
    request_hash     bytea NOT NULL CHECK (length(request_hash) = 32),
    resource_id      text NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (organisation_id, key)
);

-- Uploaded documents. The bytes are AES-GCM encrypted with the payload keys
-- (identity card scans are the most sensitive thing we hold); sha256 is of the
-- plaintext, and is what the workflow and the operator see. A document is never
-- changed: a replacement is a new row that names the one it replaces.
CREATE TABLE document (
    id                   text PRIMARY KEY CHECK (id ~ '^doc_[a-z0-9]{20,32}$'),
    organisation_id      text NOT NULL,
    kind                 text NOT NULL,
    content_type         text NOT NULL,
    filename             text,
    size_bytes           integer NOT NULL CHECK (size_bytes > 0),
    sha256               char(64) NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    encryption_key_id    text NOT NULL,
    content              bytea NOT NULL,
    replaces_id          text REFERENCES document (id),
    replaced_by_id       text REFERENCES document (id),
    uploaded_by          text NOT NULL,
    created_at           timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE INDEX document_org_idx ON document (organisation_id, created_at, id);
CREATE UNIQUE INDEX document_one_replacement ON document (replaces_id) WHERE replaces_id IS NOT NULL;

-- Which documents an application has referenced (at submission or resubmission),
-- so operators can open them while reviewing.
CREATE TABLE application_document (
    application_id  text NOT NULL REFERENCES application (id),
    document_id     text NOT NULL REFERENCES document (id),
    attached_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (application_id, document_id)
);

-- The operators' review queue reads registrations waiting for a decision,
-- overdue first, then oldest first. Keyed on (NOT overdue) so that the whole
-- order is ascending and a keyset cursor is one row comparison on this index.
CREATE INDEX registration_review_queue_idx
    ON registration ((NOT overdue), created_at, id)
    WHERE waiting_for = 'operator_decision';

-- migrate:down

DROP INDEX registration_review_queue_idx;
DROP TABLE application_document;
DROP TABLE document;
DROP TABLE idempotency_key;
DROP TABLE application;
DROP TABLE api_key;
