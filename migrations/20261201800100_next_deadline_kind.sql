-- migrate:up

-- What registration.next_deadline is for, written with it by the rule that
-- sets it: the registration's fold before the service takes over (its
-- waiting_for: operator_decision, resubmission, prepayment, verification,
-- activation_time; realname at ACTIVE), the service after (its DeadlineKind:
-- realname, arrears, quarantine_end). Webhook deadline notices read it, so that
-- they say what the rest of the system says.
ALTER TABLE registration ADD COLUMN next_deadline_kind text;

-- Rows written before the column, once, from what each row shows (the code
-- writes the column from now on).
UPDATE registration SET next_deadline_kind = CASE
        WHEN service_state IS NULL AND status = 'active' THEN 'realname'
        WHEN service_state IS NULL THEN waiting_for
        WHEN service_state = 'quarantined' THEN 'quarantine_end'
        WHEN next_deadline = realname_due_at THEN 'realname'
        WHEN arrears_stage <> 'none' THEN 'arrears'
        ELSE 'realname'
    END
WHERE next_deadline IS NOT NULL;

-- migrate:down

ALTER TABLE registration DROP COLUMN next_deadline_kind;
