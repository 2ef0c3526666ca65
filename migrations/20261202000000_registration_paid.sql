-- migrate:up

-- What was paid before activation (the prepayment). balance_fen holds the prepaid
-- balance from activation on, which charges lower, so it cannot also say that.
ALTER TABLE registration ADD COLUMN paid_fen bigint NOT NULL DEFAULT 0;

UPDATE registration r SET paid_fen = coalesce((
    SELECT sum((e.payload->>'amount_fen')::bigint)
      FROM domain_event e
     WHERE e.stream_id = r.id
       AND e.event_type = 'PaymentReceived'
), 0);

-- migrate:down

ALTER TABLE registration DROP COLUMN paid_fen;
