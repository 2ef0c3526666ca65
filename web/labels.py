"""The words the console shows for each code the system stores, by kind.

A code is an identifier (``gold``, ``ApplicationApproved``, ``wrong_stage``):
what a person reads is its label, English in the source, translated where it is
shown (``views.label``). Codes of different kinds may be spelled alike (the
``standard`` tier and the ``standard`` package), so each kind has its own table;
``tests/web/test_labels.py`` checks that every code of every kind has one.
"""

from __future__ import annotations

from web.i18n import N_
from workflows.contracts import RejectionReason

TIERS = {
    "economy": N_("Economy"),
    "standard": N_("Standard number"),
    "bronze": N_("Bronze"),
    "silver": N_("Silver"),
    "gold": N_("Gold"),
    "premium": N_("Premium number"),
}
PACKAGES = {
    "basic": N_("Basic package"),
    "standard": N_("Standard package"),
    "business": N_("Business package"),
    "premium": N_("Premium package"),
}
COMPANY_TYPES = {
    "enterprise": N_("Enterprise"),
    "individual_business": N_("Individual business"),
    "public_institution": N_("Public institution"),
}
INDUSTRIES = {
    "general": N_("General"),
    "medical": N_("Medical"),
    "education": N_("Education"),
    "finance": N_("Finance"),
}
# Vanity patterns (domain.vanity.ALL_TAGS).
TAGS = {
    "aaaa": N_("AAAA (4 alike in a row)"),
    "aaaaa": N_("AAAAA (5 alike in a row)"),
    "aaaaaa": N_("AAAAAA (6 alike in a row)"),
    "aaa_end": N_("Ends in AAA"),
    "aabb": N_("AABB"),
    "abab": N_("ABAB"),
    "abcd_up": N_("Rising run (1234)"),
    "abcd_down": N_("Falling run (4321)"),
    "mirror": N_("Mirror (ABBA)"),
    "palindrome": N_("Palindrome"),
    "lucky_group": N_("Lucky group (168, 518, 520, 1314)"),
    "lucky_digits_3plus": N_("3 or more lucky digits"),
    "lucky_digits_5plus": N_("5 or more lucky digits"),
    "lucky_digits_all": N_("Only lucky digits"),
    "has_four": N_("Has a 4"),
    "no_four": N_("No 4"),
    "fours_2plus": N_("Two or more 4s"),
}
# A number's state in the inventory (number_inventory.status).
NUMBER_STATUSES = {
    "available": N_("Available"),
    "held": N_("Held for an application"),
    "allocated": N_("Allocated"),
    "active": N_("In service"),
    "restricted": N_("Restricted"),
    "suspended": N_("Suspended"),
    "frozen": N_("Frozen"),
    "quarantined": N_("Quarantined"),
    "retired": N_("Retired"),
}
# Every event a timeline or a number's history can show (domain.timeline.EventType,
# domain.service_rules.ChangeKind, and the access log's).
EVENTS = {
    "ApplicationSubmitted": N_("Application submitted"),
    "ApplicationRefused": N_("Application refused at submission"),
    "ReviewOverdue": N_("Review overdue"),
    "DeadlineRecomputed": N_("Deadline recomputed on the official holiday schedule"),
    "DeadlineAwaitingCalendar": N_("Deadline waits for the official holiday schedule"),
    "ChangesRequested": N_("Changes requested"),
    "ApplicationResubmitted": N_("Application resubmitted"),
    "ApplicationRejected": N_("Application rejected"),
    "ApplicationAbandoned": N_("Application abandoned"),
    "ApplicationApproved": N_("Application approved"),
    "NumberLost": N_("Number lost"),
    "PaymentReceived": N_("Prepayment received"),
    "PrepaymentExpired": N_("Prepayment expired"),
    "VerificationPassed": N_("Verification passed"),
    "VerificationFailed": N_("Verification failed"),
    "VerificationExpired": N_("Verification expired"),
    "ProvisioningStarted": N_("Provisioning started"),
    "NumberActivated": N_("Number activated"),
    "ProvisioningFailed": N_("Provisioning failed"),
    "ApplicationWithdrawn": N_("Application withdrawn"),
    "ServiceBilled": N_("Bill issued"),
    "ArrearsGraceStarted": N_("Arrears: grace period started"),
    "ArrearsRestricted": N_("Arrears: restricted"),
    "ArrearsSuspended": N_("Arrears: suspended"),
    "ArrearsFrozen": N_("Arrears: frozen"),
    "NumberReclaimed": N_("Number reclaimed"),
    "ServicePaymentReceived": N_("Payment credited"),
    "ArrearsCleared": N_("Arrears cleared"),
    "RealnameOverdue": N_("Real-name registration overdue"),
    "RealnameRestricted": N_("Real-name: restricted"),
    "RealnameSuspended": N_("Real-name: suspended"),
    "RealnameConfirmed": N_("Real-name registration confirmed"),
    "OperatorSuspended": N_("Suspended by an operator"),
    "OperatorResumed": N_("Resumed by an operator"),
    "ServiceTerminated": N_("Service terminated"),
    "DetailsChangeReported": N_("Change of details reported"),
    "NumberReleased": N_("Number released"),
    "PersonalDataRevealed": N_("Personal data revealed"),
}

# The application's fields, and the other fields a form or the API can name.
FIELDS = {
    "company_name": N_("Company name"),
    "credit_code": N_("Unified Social Credit Code"),
    "company_type": N_("Company type"),
    "industry": N_("Industry"),
    "legal_representative": N_("Legal representative"),
    "legal_representative.name": N_("Legal representative: name"),
    "legal_representative.id_number": N_("Legal representative: ID number"),
    "legal_representative.phone": N_("Legal representative: phone"),
    "agent": N_("Agent"),
    "agent.name": N_("Agent: name"),
    "agent.id_number": N_("Agent: ID number"),
    "agent.phone": N_("Agent: phone"),
    "contact_address": N_("Contact address"),
    "destination_numbers": N_("Destination numbers"),
    "package": N_("Package"),
    "requested_number": N_("Requested number"),
    "number_criteria": N_("Number wanted (criteria)"),
    "activation_at": N_("Activation time"),
    "carrier": N_("Carrier"),
    "documents": N_("Documents"),
    "organisation_id": N_("Organisation"),
    # What the console's forms send.
    "decision": N_("Decision"),
    "reason_code": N_("Rejection reason"),
    "reason": N_("Reason"),
    "fields": N_("Fields to change"),
    "outcome": N_("Outcome"),
    "field": N_("Field"),
    "changed_at": N_("Changed on"),
    "values": N_("New values"),
    "username": N_("Username"),
    "display_name": N_("Name"),
    "role": N_("Role"),
    "password": N_("Password"),
    "cursor": N_("Page link"),
    "application_id": N_("Application"),
    "starts_with": N_("Starts with"),
    "ends_with": N_("Ends with"),
    "contains": N_("Contains"),
    "tag": N_("Pattern"),
    "tier": N_("Tier"),
    "max_price_yuan": N_("Price ceiling (yuan/month)"),
}
DOCUMENTS = {
    "business_licence": N_("Business licence"),
    "legal_rep_id": N_("Legal representative's ID card"),
    "agent_id": N_("Agent's ID card"),
    "authorisation_letter": N_("Authorisation letter"),
    "application_form": N_("Application form with company seal"),
    "industry_licence": N_("Industry licence"),
}
REJECTIONS = {
    RejectionReason.DOCUMENTS_INVALID.value: N_("Documents invalid"),
    RejectionReason.IDENTITY_MISMATCH.value: N_("Identity does not match"),
    RejectionReason.CREDIT_CODE_INVALID.value: N_("Credit code invalid"),
    RejectionReason.INDUSTRY_LICENCE_MISSING.value: N_("Industry licence missing"),
    RejectionReason.PROHIBITED_USE.value: N_("Prohibited use"),
    RejectionReason.DUPLICATE_APPLICATION.value: N_("Duplicate application"),
    RejectionReason.OTHER.value: N_("Other"),
}

KINDS: dict[str, dict[str, str]] = {
    "tier": TIERS,
    "package": PACKAGES,
    "company_type": COMPANY_TYPES,
    "industry": INDUSTRIES,
    "tag": TAGS,
    "number_status": NUMBER_STATUSES,
    "event": EVENTS,
    "field": FIELDS,
    "document": DOCUMENTS,
    "rejection": REJECTIONS,
}
# The application's fields whose values are codes, and the kind of each.
FIELD_VALUE_KINDS = {"company_type": "company_type", "industry": "industry", "package": "package"}
