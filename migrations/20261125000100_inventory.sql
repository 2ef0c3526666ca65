-- migrate:up

-- Search and lifecycle support for number_inventory (table in the foundation
-- migration). Every search keeps results in number order for keyset
-- pagination, so the indexes are chosen to hand rows back in that order, or to
-- narrow a rare filter to a few thousand rows that are cheap to sort.

CREATE EXTENSION IF NOT EXISTS pg_trgm;

-- Numbers whose prefix no carrier has been given yet. A whole-space import
-- loads them as retired rows of this carrier, so that configuring the prefix
-- later and re-running the import releases them without a second load.
INSERT INTO carrier (code, name, name_zh) VALUES ('unassigned', 'Unassigned', '未分配')
ON CONFLICT (code) DO NOTHING;

-- The last registration that held the number: once a number is released or
-- quarantined, registration_id is cleared (a constraint), and a retried
-- release/quarantine must still recognise its own earlier success.
ALTER TABLE number_inventory ADD COLUMN previous_registration_id text;

-- "contains": trigrams of the 7 digits after 400. The prefix is left out since
-- its trigrams are in every row and would only bloat the index.
CREATE INDEX number_inventory_suffix_trgm
    ON number_inventory USING gin (substr(number::text, 4) gin_trgm_ops);

-- "ends with": the last 4 digits, then the number, so that the numbers ending
-- in 8888 are read already in number order. Three digits are ten such slices
-- (0888 ... 9888) merged in order; one or two digits match so many numbers that
-- a filter on an ordered scan fills a page at once.
CREATE INDEX number_inventory_last4
    ON number_inventory (substr(number::text, 7), number);

-- What searches walk by default: the numbers on offer, in order. Without it a
-- scan crosses every held, allocated or retired number (4 million of them in
-- a whole-space import, whose unassigned prefixes are retired) before it
-- finds a page.
CREATE INDEX number_inventory_available
    ON number_inventory (number) WHERE status = 'available';

-- Pattern tags and tiers held by under 4% of numbers: a partial index in
-- number order answers "tag X, first page" without reading the other rows,
-- and keeps such a tag combined with other filters (carrier, ends with, no 4)
-- fast. Frequent ones (no_four, has_four, fours_2plus, lucky_digits_3plus,
-- the standard and economy tiers, bronze) need none: walking
-- number_inventory_available finds a page of them within a few hundred rows.
-- Each index costs the import a pass over the table (about 2 s for 10M). The predicates must be spelled exactly as
-- the repository spells them (tags @> '{x}'::text[], tier = 'x').
CREATE INDEX number_inventory_tag_aaaaaa ON number_inventory (number) WHERE tags @> '{aaaaaa}'::text[];
CREATE INDEX number_inventory_tag_aaaaa ON number_inventory (number) WHERE tags @> '{aaaaa}'::text[];
CREATE INDEX number_inventory_tag_aaaa ON number_inventory (number) WHERE tags @> '{aaaa}'::text[];
CREATE INDEX number_inventory_tag_aaa_end ON number_inventory (number) WHERE tags @> '{aaa_end}'::text[];
CREATE INDEX number_inventory_tag_mirror ON number_inventory (number) WHERE tags @> '{mirror}'::text[];
CREATE INDEX number_inventory_tag_lucky_group ON number_inventory (number) WHERE tags @> '{lucky_group}'::text[];
CREATE INDEX number_inventory_tag_aabb ON number_inventory (number) WHERE tags @> '{aabb}'::text[];
CREATE INDEX number_inventory_tag_abab ON number_inventory (number) WHERE tags @> '{abab}'::text[];
CREATE INDEX number_inventory_tag_abcd_up ON number_inventory (number) WHERE tags @> '{abcd_up}'::text[];
CREATE INDEX number_inventory_tag_abcd_down ON number_inventory (number) WHERE tags @> '{abcd_down}'::text[];
CREATE INDEX number_inventory_tag_palindrome ON number_inventory (number) WHERE tags @> '{palindrome}'::text[];
CREATE INDEX number_inventory_tag_lucky_digits_all
    ON number_inventory (number) WHERE tags @> '{lucky_digits_all}'::text[];
-- 3% of numbers, but none among the low ones (a suffix 000xxxx has at most
-- four lucky digits): an ordered scan would cross a million rows to reach them.
CREATE INDEX number_inventory_tag_lucky_digits_5plus
    ON number_inventory (number) WHERE tags @> '{lucky_digits_5plus}'::text[];
CREATE INDEX number_inventory_tier_premium ON number_inventory (number) WHERE tier = 'premium';
CREATE INDEX number_inventory_tier_gold ON number_inventory (number) WHERE tier = 'gold';
CREATE INDEX number_inventory_tier_silver ON number_inventory (number) WHERE tier = 'silver';

-- The sweeper's work lists: only held (quarantined) numbers have an expiry.
-- The predicate is on the expiry, not on the status: with "status = 'held'",
-- the planner took this small index for every "number = $1 AND status =
-- 'held'" (release, allocate) and scanned all of it instead of the primary key.
CREATE INDEX number_inventory_hold_expiry
    ON number_inventory (hold_expires_at) WHERE hold_expires_at IS NOT NULL;
CREATE INDEX number_inventory_quarantine_expiry
    ON number_inventory (quarantine_until) WHERE quarantine_until IS NOT NULL;

-- No hand-written UPDATE can move a number that is allocated or in service
-- straight from one registration to another: the holder must give it up first
-- (release, quarantine). Only an expired hold may pass directly to a new holder.
-- Together with the primary key (one row per number) and the unique index on
-- registration_id (one number per registration), no number is ever assigned
-- twice.
CREATE FUNCTION number_inventory_no_takeover() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.registration_id IS NOT NULL AND NEW.registration_id IS NOT NULL
       AND OLD.registration_id <> NEW.registration_id
       AND NOT (OLD.status = 'held' AND OLD.hold_expires_at <= statement_timestamp()) THEN
        RAISE EXCEPTION 'number % belongs to another registration (status %)', OLD.number, OLD.status
            USING ERRCODE = 'integrity_constraint_violation',
                  HINT = 'release or quarantine the number before assigning it again';
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER number_inventory_no_takeover
    BEFORE UPDATE OF registration_id ON number_inventory
    FOR EACH ROW EXECUTE FUNCTION number_inventory_no_takeover();

-- One row per import run: what was asked for, how much it changed, when.
CREATE TABLE number_import_run (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    scope           text NOT NULL,
    first_number    char(10) NOT NULL,
    last_number     char(10) NOT NULL,
    mode            text NOT NULL CHECK (mode IN ('bulk', 'merge')),
    numbers_total   bigint NOT NULL,
    inserted        bigint NOT NULL DEFAULT 0,
    reclassified    bigint NOT NULL DEFAULT 0,
    started_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    finished_at     timestamptz
);

-- migrate:down

DROP TABLE number_import_run;
DROP TRIGGER number_inventory_no_takeover ON number_inventory;
DROP FUNCTION number_inventory_no_takeover();
DROP INDEX number_inventory_quarantine_expiry;
DROP INDEX number_inventory_hold_expiry;
DROP INDEX number_inventory_tier_silver;
DROP INDEX number_inventory_tier_gold;
DROP INDEX number_inventory_tier_premium;
DROP INDEX number_inventory_tag_lucky_digits_5plus;
DROP INDEX number_inventory_tag_lucky_digits_all;
DROP INDEX number_inventory_tag_palindrome;
DROP INDEX number_inventory_tag_lucky_group;
DROP INDEX number_inventory_tag_mirror;
DROP INDEX number_inventory_tag_aaa_end;
DROP INDEX number_inventory_tag_abcd_down;
DROP INDEX number_inventory_tag_abab;
DROP INDEX number_inventory_tag_aabb;
DROP INDEX number_inventory_tag_abcd_up;
DROP INDEX number_inventory_tag_aaaa;
DROP INDEX number_inventory_tag_aaaaa;
DROP INDEX number_inventory_tag_aaaaaa;
DROP INDEX number_inventory_available;
DROP INDEX number_inventory_last4;
DROP INDEX number_inventory_suffix_trgm;
ALTER TABLE number_inventory DROP COLUMN previous_registration_id;
DELETE FROM number_inventory WHERE carrier_code = 'unassigned';
DELETE FROM carrier WHERE code = 'unassigned';
-- pg_trgm stays: other objects may have come to depend on it.
