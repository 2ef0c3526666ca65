-- migrate:up

-- Webhooks carry registrations only. The event log also holds the console's
-- audit streams (staff:<id> for sign-ins, access:<application id> for reveals
-- of personal data); their events must never reach a customer, whatever they
-- carry, and need none of the fan-out's lookups. A registration's stream is
-- its application id, app_<...> (api/ids.py). Said in the trigger's WHEN
-- rather than in the function: other streams do not even call it, and a later
-- replacement of the function cannot lose the rule.
DROP TRIGGER domain_event_webhooks ON domain_event;
CREATE TRIGGER domain_event_webhooks
    AFTER INSERT ON domain_event
    FOR EACH ROW WHEN (NEW.stream_id LIKE 'app\_%')
    EXECUTE FUNCTION webhook_fan_out_event();

-- migrate:down

DROP TRIGGER domain_event_webhooks ON domain_event;
CREATE TRIGGER domain_event_webhooks
    AFTER INSERT ON domain_event
    FOR EACH ROW EXECUTE FUNCTION webhook_fan_out_event();
