-- migrate:up

-- One lifecycle value per registration (domain/lifecycle.py), what the nearest
-- deadline is for, and what is owed back when a registration paid for before
-- activation closed without it.
ALTER TABLE registration
    ADD COLUMN lifecycle text,
    ADD COLUMN next_deadline_kind text CHECK (next_deadline_kind IN (
        'operator_decision', 'resubmission', 'prepayment', 'verification', 'activation_time',
        'billing', 'arrears', 'realname', 'quarantine_end')),
    ADD COLUMN refund_owed_fen bigint NOT NULL DEFAULT 0 CHECK (refund_owed_fen >= 0);

-- backfill:begin (tests/activities/test_lifecycle_migration.py runs these statements)
-- A service that has ended is no longer active anywhere: stage closed, and the
-- status says how it ended (a reclaim leaves arrears_stage at 'reclaimed').
UPDATE registration SET
    stage = 'closed',
    status = CASE WHEN arrears_stage = 'reclaimed' THEN 'reclaimed' ELSE 'terminated' END
WHERE service_state IN ('quarantined', 'released');

UPDATE registration SET lifecycle = CASE
    WHEN service_state = 'released' THEN 'closed'
    WHEN service_state = 'quarantined' THEN status
    WHEN service_state = 'active' THEN 'in_service'
    WHEN service_state IS NOT NULL THEN service_state
    WHEN stage = 'closed' THEN 'closed'
    WHEN stage = 'active' THEN 'in_service'
    WHEN status = 'awaiting_prepayment' THEN 'awaiting_payment'
    WHEN status = 'provisioning' THEN 'awaiting_activation'
    WHEN status IN ('in_review', 'changes_requested', 'awaiting_verification', 'awaiting_activation')
        THEN status
    ELSE 'submitted'
END;

-- Before activation the deadline is what the registration waits for. In service
-- the row held the next arrears, real-name or quarantine deadline; the service's
-- next change (at the latest its next bill) writes the nearest of any kind.
UPDATE registration SET next_deadline_kind = CASE
    WHEN next_deadline IS NULL THEN NULL
    WHEN service_state IS NULL AND stage = 'active' THEN 'realname'
    WHEN service_state IS NULL THEN CASE waiting_for
        WHEN 'operator_decision' THEN 'operator_decision'
        WHEN 'resubmission' THEN 'resubmission'
        WHEN 'prepayment' THEN 'prepayment'
        WHEN 'verification' THEN 'verification'
        WHEN 'activation_time' THEN 'activation_time'
    END
    WHEN service_state = 'quarantined' THEN 'quarantine_end'
    WHEN next_deadline = realname_due_at OR realname_stage <> 'current' THEN 'realname'
    WHEN arrears_stage NOT IN ('none', 'reclaimed') THEN 'arrears'
    ELSE 'realname'
END;
-- backfill:end

ALTER TABLE registration
    ALTER COLUMN lifecycle SET NOT NULL,
    ADD CONSTRAINT registration_lifecycle_check CHECK (lifecycle IN (
        'submitted', 'in_review', 'changes_requested', 'awaiting_payment', 'awaiting_verification',
        'awaiting_activation', 'in_service', 'restricted', 'suspended', 'frozen', 'terminated',
        'reclaimed', 'closed'));

-- Dashboards count and filter on it, per carrier.
CREATE INDEX registration_lifecycle_idx ON registration (lifecycle, carrier_code);

-- migrate:down

DROP INDEX registration_lifecycle_idx;
UPDATE registration SET stage = 'active', status = 'active'
WHERE service_state IN ('quarantined', 'released');
ALTER TABLE registration
    DROP COLUMN refund_owed_fen,
    DROP COLUMN next_deadline_kind,
    DROP COLUMN lifecycle;
