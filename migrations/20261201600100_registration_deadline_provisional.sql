-- migrate:up

-- The running working-day deadline of a registration (review target, resubmission
-- window): whether it is provisional (counted across a year with no official
-- holiday schedule) and from when it was counted, so that loading a year finds
-- every deadline it may move (workflows/calendar_recompute.py).
ALTER TABLE registration
    ADD COLUMN deadline_provisional boolean NOT NULL DEFAULT false,
    ADD COLUMN deadline_counted_from timestamptz;

CREATE INDEX registration_working_day_deadline_idx
    ON registration (id) WHERE deadline_counted_from IS NOT NULL;

-- migrate:down

DROP INDEX registration_working_day_deadline_idx;
ALTER TABLE registration DROP COLUMN deadline_counted_from, DROP COLUMN deadline_provisional;
