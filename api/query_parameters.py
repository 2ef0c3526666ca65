"""Query parameters an operation does not take are refused, not ignored.

A misspelt filter (`?tag=premium` for `tags`, `?pattern_tag=` as the form calls
it) would otherwise answer 200 with the whole unfiltered listing, which a client
reads as the filtered one. Request bodies already refuse unknown fields; this
gives query strings the same rule, with the error naming the parameter and the
ones the operation takes.
"""

from __future__ import annotations

from fastapi import Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from api.errors import InvalidInput, field_error

UNKNOWN_PARAMETER = "unknown_parameter"

# By route id, with the route kept beside its names: several apps (tests) have their
# own routes, and an id is only checked against the route it was taken from.
_taken_by_route: dict[int, tuple[APIRoute, tuple[str, ...]]] = {}


def _taken(dependant: Dependant) -> set[str]:
    names = {param.alias for param in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _taken(sub)
    return names


async def refuse_unknown_query_parameters(request: Request) -> None:
    route = request.scope.get("route")
    if not isinstance(route, APIRoute) or not request.query_params:
        return
    known = _taken_by_route.get(id(route))
    if known is None or known[0] is not route:
        known = _taken_by_route[id(route)] = (route, tuple(sorted(_taken(route.dependant))))
    taken = known[1]
    unknown = [name for name in dict.fromkeys(request.query_params.keys()) if name not in taken]
    if unknown:
        takes = f"it takes {', '.join(taken)}" if taken else "it takes none"
        raise InvalidInput(
            f"Unknown query parameter {', '.join(unknown)}: {takes}.",
            errors=[
                field_error(name, UNKNOWN_PARAMETER, f"Not a parameter of this operation: {takes}.")
                for name in unknown
            ],
        )
