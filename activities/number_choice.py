"""An application's number criteria as an inventory search.

One translation, used by the apply step that holds a matching number and by the
API's pre-check that tells an applicant, before anything is created, whether
one would be found.
"""

from __future__ import annotations

from activities.repositories import inventory
from domain.applicant import NumberCriteria


def search_criteria(carrier: str, wanted: NumberCriteria) -> inventory.SearchCriteria:
    """The search for ``wanted`` among ``carrier``'s numbers; raises pydantic's
    ValidationError for criteria no search accepts."""
    starts = wanted.starts_with
    if starts is not None and not starts.startswith("400") and not "400".startswith(starts):
        # Applicants type the digits they want after 400; the search matches from the first digit.
        starts = "400" + starts
    return inventory.SearchCriteria(
        carrier=carrier,
        tier=wanted.tier,
        tags=[wanted.pattern_tag] if wanted.pattern_tag else [],
        starts_with=starts,
        ends_with=wanted.ends_with,
        contains=wanted.contains,
        exclude_four=wanted.exclude_four,
        max_monthly_spend_fen=wanted.max_monthly_spend_fen,
    )
