"""Custom search attributes the registration workflows keep current.

Pure declarations: imported by workflows (inside the sandbox), by the worker and by
the embedded dev server launcher, which registers them at start.
"""

from temporalio.common import SearchAttributeKey

STAGE = SearchAttributeKey.for_keyword("RegistrationStage")
CARRIER = SearchAttributeKey.for_keyword("Carrier")
ORGANISATION = SearchAttributeKey.for_keyword("OrganisationId")
NEXT_DEADLINE = SearchAttributeKey.for_datetime("NextDeadline")
OVERDUE = SearchAttributeKey.for_bool("Overdue")
SERVICE_NUMBER = SearchAttributeKey.for_keyword("ServiceNumber")
# One value per registration from application to release (domain.lifecycle.Lifecycle).
LIFECYCLE = SearchAttributeKey.for_keyword("RegistrationLifecycle")

ALL_KEYS = (STAGE, CARRIER, ORGANISATION, NEXT_DEADLINE, OVERDUE, SERVICE_NUMBER, LIFECYCLE)

# Names as the `temporal` CLI spells the types for --search-attribute.
CLI_TYPES = {
    STAGE.name: "Keyword",
    CARRIER.name: "Keyword",
    ORGANISATION.name: "Keyword",
    NEXT_DEADLINE.name: "Datetime",
    OVERDUE.name: "Bool",
    SERVICE_NUMBER.name: "Keyword",
    LIFECYCLE.name: "Keyword",
}
