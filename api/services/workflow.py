"""Talking to registration workflows: start, Updates, the status Query.

Maps what Temporal answers to HTTP: an Update its validator rejects is 409 with
the registration's current state; an invalid argument is 422; Temporal being
unreachable (or no worker answering in time) is 503 with Retry-After.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any, TypeVar

from temporalio.client import (
    Client,
    WorkflowHandle,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from api.errors import Conflict, InvalidInput, ServiceUnavailable, field_error
from api.readiness import WorkflowHealth
from workflows.contracts import (
    ERR_ACTIVATING,
    ERR_ALREADY_DECIDED,
    ERR_INVALID_APPLICATION,
    ERR_INVALID_REQUEST,
    ERR_WRONG_STAGE,
    QUERY_STATUS,
    UPDATE_SUBMISSION,
    WORKFLOW_NAME,
    RegistrationInput,
    RegistrationStatus,
)
from workflows.service_contracts import ServiceStatus

log = logging.getLogger("api.workflow")

R = TypeVar("R")

# How long a 409 waits for the live state before falling back to the read model.
_STATUS_QUERY_SECONDS = 2.0


_UNAVAILABLE = {
    "temporal": "The workflow service (Temporal) is not answering; retry shortly",
    "workers": "No worker is taking registration work right now; retry shortly",
}


class WorkflowGateway:
    def __init__(
        self, client: Client, task_queue: str, update_timeout: float, *, health: WorkflowHealth | None = None
    ) -> None:
        self.client = client
        self.task_queue = task_queue
        self.update_timeout = update_timeout
        self.health = health

    def require_available(self) -> None:
        """Refuses at once (503 + Retry-After) what could only wait and then fail:
        a request that needs a workflow while Temporal is down or no worker polls."""
        down = self.health.unavailable() if self.health is not None else None
        if down is not None:
            raise ServiceUnavailable(_UNAVAILABLE[down], extra={"service": down})

    def handle(self, workflow_id: str) -> WorkflowHandle[Any, Any]:
        return self.client.get_workflow_handle(workflow_id)

    async def start(self, workflow_id: str, arg: RegistrationInput) -> None:
        """Starts the registration, or does nothing if it already exists.

        USE_EXISTING makes a concurrent or retried start of the same id attach to
        the running workflow; REJECT_DUPLICATE stops a closed one from being
        started again. Both are a second guard: the id already comes from an
        application id allocated once per Idempotency-Key.
        """
        try:
            await self.client.start_workflow(
                WORKFLOW_NAME,
                arg,
                id=workflow_id,
                task_queue=self.task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            )
        except WorkflowAlreadyStartedError:
            log.info("workflow already exists", extra={"workflow_id": workflow_id})

    async def wait_submitted(self, workflow_id: str) -> RegistrationStatus | None:
        """The state once the apply step is done, or None if that does not come
        in time (no worker) or the workflow has already closed: the caller then
        answers from what it has."""
        try:
            result: RegistrationStatus = await asyncio.wait_for(
                self.handle(workflow_id).execute_update(UPDATE_SUBMISSION, result_type=RegistrationStatus),
                self.update_timeout,
            )
            return result
        except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError, RPCError) as exc:
            # The workflow is started (durably): not knowing how far it got is no
            # reason to fail the request; the client sees status "submitted".
            log.warning(
                "apply step did not answer", extra={"workflow_id": workflow_id, "error": type(exc).__name__}
            )
            return None
        except WorkflowUpdateFailedError:
            return None

    async def exists(self, workflow_id: str) -> bool:
        """Whether Temporal has a workflow under this id (running or closed)."""
        try:
            await self.handle(workflow_id).describe()
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                return False
            raise
        return True

    async def status(self, workflow_id: str, *, in_service: bool = False) -> RegistrationStatus | None:
        """The live status Query; ``in_service`` (from ACTIVE on) decodes the service
        workflow's answer with its service fields."""
        result_type = ServiceStatus if in_service else RegistrationStatus
        if self.health is not None and self.health.unavailable() is not None:
            return None  # nobody would answer the Query: the read model it is
        try:
            result: RegistrationStatus = await asyncio.wait_for(
                self.handle(workflow_id).query(QUERY_STATUS, result_type=result_type),
                _STATUS_QUERY_SECONDS,
            )
            return result
        except Exception:  # noqa: BLE001 - the caller falls back to the read model
            return None

    async def update(
        self,
        workflow_id: str,
        name: str,
        arg: Any,
        result_type: type[R],
        *,
        update_id: str | None = None,
    ) -> R:
        """Runs an Update and returns its result.

        Raises UpdateRejected (the workflow refused it: 409/422, with the current
        state attached by the caller) or ServiceUnavailable.
        """
        try:
            result: R = await asyncio.wait_for(
                self.handle(workflow_id).execute_update(name, arg, result_type=result_type, id=update_id),
                self.update_timeout,
            )
            return result
        except TimeoutError:
            raise ServiceUnavailable(
                "The registration did not answer in time; retry shortly", extra={"service": "temporal"}
            ) from None
        except WorkflowUpdateFailedError as exc:
            raise UpdateRejected.from_failure(exc.cause) from None
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                # The workflow has ended: nothing is waiting for this any more.
                raise UpdateRejected(CLOSED, "The registration has ended", None) from None
            if _workflow_not_ready(exc):
                # Its workflow task keeps failing (after a crash, until a worker
                # gets it through): Temporal takes no Update meanwhile.
                log.warning("workflow task failing; update refused", extra={"workflow_id": workflow_id})
                raise ServiceUnavailable(
                    "The registration is recovering from a failure; retry shortly",
                    extra={"service": "temporal"},
                ) from None
            raise


def _workflow_not_ready(exc: RPCError) -> bool:
    """Temporal's "Workflow Task in failed state" (WorkflowNotReadyFailure)."""
    if exc.status != RPCStatusCode.FAILED_PRECONDITION:
        return False
    details = exc.grpc_status.details
    return (
        any(d.type_url.endswith("WorkflowNotReadyFailure") for d in details) or "failed state" in exc.message
    )


# Not an ApplicationError type: the workflow had already ended, so no validator
# said why; the caller works out the code from the registration's final state.
CLOSED = "Closed"


class UpdateRejected(Exception):
    """The workflow refused an Update; ``kind`` is the ApplicationError type."""

    def __init__(self, kind: str, message: str, details: Any) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.details = details

    @classmethod
    def from_failure(cls, cause: BaseException | None) -> UpdateRejected:
        if isinstance(cause, ApplicationError):
            return cls(cause.type or "", cause.message, cause.details)
        return cls("", str(cause) if cause else "The registration refused the request", None)

    def field_errors(self) -> list[dict[str, str]]:
        """FieldErrors carried in the details (InvalidApplication), in our shape."""
        found: list[dict[str, str]] = []

        def visit(item: Any) -> None:
            if isinstance(item, Mapping) and {"field", "code", "message"} <= item.keys():
                found.append(field_error(str(item["field"]), str(item["code"]), str(item["message"])))
            elif isinstance(item, list | tuple):
                for x in item:
                    visit(x)
            elif isinstance(item, Mapping):
                for x in item.values():
                    visit(x)

        visit(self.details)
        return found

    def to_api_error(
        self, current: Any, *, decided_by: frozenset[str] = frozenset()
    ) -> Conflict | InvalidInput | ServiceUnavailable:
        """The HTTP error, with ``current`` (the registration's state) attached.

        ``decided_by``: final statuses that mean "another caller already did what
        this Update does" (a rejection, for a decision), so that losing a race
        to a decision that also closed the workflow still reads already_decided.
        """
        extra = {"registration": current} if current is not None else {}
        if self.kind == ERR_ACTIVATING:
            return ServiceUnavailable(
                "The number is being activated; retry in a moment",
                retry_after=1,
                extra={"service": "temporal", **extra},
            )
        if self.kind == CLOSED:
            status = current.get("status") if isinstance(current, dict) else None
            code = "already_decided" if status in decided_by else "wrong_stage"
            return Conflict(f"{self.message} ({status})" if status else self.message, code=code, extra=extra)
        if self.kind in (ERR_INVALID_REQUEST, ERR_INVALID_APPLICATION):
            return InvalidInput(
                self.message,
                errors=self.field_errors() or [field_error("", "invalid_request", self.message)],
                extra=extra,
            )
        code = {ERR_WRONG_STAGE: "wrong_stage", ERR_ALREADY_DECIDED: "already_decided"}.get(
            self.kind, "wrong_stage"
        )
        return Conflict(self.message, code=code, extra=extra)
