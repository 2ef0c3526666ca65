"""Who may do what: one table for the HTTP API and the operator console.

An API route names the action it performs (``api.auth.allow(Action.X)``) and the
console checks the same action before it shows a button or accepts a form
(``web``), so a role can never do in one what the other refuses.
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    APPLICANT = "applicant"
    OPERATOR = "operator"
    ADMIN = "admin"
    VIEWER = "viewer"


class Action(StrEnum):
    READ_CATALOGUE = "read_catalogue"
    SEARCH_NUMBERS = "search_numbers"
    UPLOAD_DOCUMENT = "upload_document"
    READ_DOCUMENT = "read_document"
    SUBMIT_APPLICATION = "submit_application"  # also evaluate and resubmit
    LIST_OWN_APPLICATIONS = "list_own_applications"
    READ_APPLICATION = "read_application"  # one application and its timeline
    PAY = "pay"
    WITHDRAW = "withdraw"
    TERMINATE = "terminate"
    REPORT_DETAILS_CHANGE = "report_details_change"
    REVIEW = "review"  # the review queue, claiming a case
    DECIDE = "decide"
    VERIFY = "verify"
    SUSPEND_RESUME = "suspend_resume"
    CONFIRM_REALNAME = "confirm_realname"
    VIEW_DASHBOARD = "view_dashboard"  # every registration, counts, the live feed
    MANAGE_API_KEYS = "manage_api_keys"
    DECODE_PAYLOADS = "decode_payloads"  # the Temporal UI's codec: shows personal data
    USE_CONSOLE = "use_console"
    MANAGE_STAFF = "manage_staff"
    REVEAL_PERSONAL_DATA = "reveal_personal_data"  # one field of one application, with a reason
    MANAGE_WEBHOOKS = "manage_webhooks"  # an applicant its organisation's endpoints, an admin any
    READ_CALENDAR = "read_calendar"  # the holiday schedules and which year is missing
    LOAD_CALENDAR = "load_calendar"  # a year's official holiday schedule: moves everyone's deadlines


_A, _O, _AD, _V = Role.APPLICANT, Role.OPERATOR, Role.ADMIN, Role.VIEWER
STAFF = (_O, _AD)
READERS = (_O, _AD, _V)
EVERYONE = tuple(Role)

PERMISSIONS: dict[Action, tuple[Role, ...]] = {
    Action.READ_CATALOGUE: EVERYONE,
    Action.SEARCH_NUMBERS: EVERYONE,
    Action.UPLOAD_DOCUMENT: (_A,),
    Action.READ_DOCUMENT: (_A, *STAFF),
    Action.SUBMIT_APPLICATION: (_A,),
    Action.LIST_OWN_APPLICATIONS: (_A,),
    Action.READ_APPLICATION: (_A, *READERS),
    Action.PAY: (_A,),
    Action.WITHDRAW: (_A,),
    Action.TERMINATE: (_A, *STAFF),
    Action.REPORT_DETAILS_CHANGE: (_A, *STAFF),
    Action.REVIEW: STAFF,
    Action.DECIDE: STAFF,
    Action.VERIFY: STAFF,
    Action.SUSPEND_RESUME: STAFF,
    Action.CONFIRM_REALNAME: STAFF,
    Action.VIEW_DASHBOARD: READERS,
    Action.MANAGE_API_KEYS: (_AD,),
    Action.DECODE_PAYLOADS: STAFF,
    Action.USE_CONSOLE: READERS,
    Action.MANAGE_STAFF: (_AD,),
    Action.REVEAL_PERSONAL_DATA: STAFF,
    Action.MANAGE_WEBHOOKS: (_A, _AD),
    Action.READ_CALENDAR: EVERYONE,
    Action.LOAD_CALENDAR: (_AD,),
}


def may(role: Role, action: Action) -> bool:
    return role in PERMISSIONS[action]
