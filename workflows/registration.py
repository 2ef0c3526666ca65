"""The registration workflow: apply, audit, allocate, verify, activate.

One execution per application, id ``registration_workflow_id(application_id)``.
This module is the Temporal face of a registration: the workflow's name, its
Updates (each with a validator) and its Query, as ``workflows/contracts.py``
names them, and the service's Updates (``ServiceUpdates``), which the same run
takes from ACTIVE on. Every call goes to ``RegistrationFlow``
(workflows/registration_flow.py), which holds the logic, and from ACTIVE on to
the ``ServiceFlow`` the run carries on as. The workflow runs outside the Python SDK's sandbox: see
``workflows/registration_flow.py`` for why, and for what keeps it deterministic.
The split began as a sandbox saving and is now kept for layout: what Temporal
sees (names, signatures, validators) in one short file, the behaviour in a plain
class. The passed-through imports below cost nothing unsandboxed and keep the
module loadable should the sandbox come back.
"""

from __future__ import annotations

from collections.abc import Sequence

from temporalio import workflow
from temporalio.common import RawValue

with workflow.unsafe.imports_passed_through():
    from workflows.contracts import (
        QUERY_STATUS,
        UPDATE_DECIDE,
        UPDATE_PAY,
        UPDATE_RESUBMIT,
        UPDATE_SUBMISSION,
        UPDATE_VERIFY,
        UPDATE_WITHDRAW,
        WORKFLOW_NAME,
        DecisionRequest,
        PaymentRequest,
        PaymentResult,
        RegistrationInput,
        RegistrationResult,
        RegistrationStatus,
        Resubmission,
        VerificationRequest,
        WithdrawalRequest,
    )
    from workflows.registration_flow import RegistrationFlow
    from workflows.service import ServiceUpdates
    from workflows.service_contracts import ServiceResult, service_input_from_registration
    from workflows.service_flow import ServiceFlow


@workflow.defn(name=WORKFLOW_NAME, sandboxed=False)
class RegistrationWorkflow(ServiceUpdates):
    @workflow.init
    def __init__(self, inp: RegistrationInput) -> None:
        self._flow = RegistrationFlow(inp)
        self._service: ServiceFlow | None = None

    @workflow.run
    async def run(self, inp: RegistrationInput) -> RegistrationResult | ServiceResult:
        ended = await self._flow.run()
        if ended.outcome != "active" or not self._flow.serves_in_run:
            return ended
        # The number is in service: this run carries on as the service until the
        # service continues as new into ServiceWorkflow, sparing every
        # registration a run of its own at ACTIVE (its end, the next one's start
        # and first task).
        self._service = ServiceFlow(service_input_from_registration(ended, inp.timings))
        return await self._service.run()

    def _serving(self, update: str) -> ServiceFlow:
        if self._service is None:
            self._flow.refuse_unknown_update(update)
        return self._service

    @workflow.update(name=UPDATE_SUBMISSION)
    async def submission(self) -> RegistrationStatus:
        """Answers once the apply step is done: submitted, or refused and why."""
        return await self._flow.submission()

    @submission.validator
    def _validate_submission(self) -> None:
        self._refuse_in_service(UPDATE_SUBMISSION)

    @workflow.update(name=UPDATE_DECIDE)
    async def decide(self, req: DecisionRequest) -> RegistrationStatus:
        return await self._flow.decide(req)

    @decide.validator
    def _validate_decide(self, req: DecisionRequest) -> None:
        self._refuse_in_service(UPDATE_DECIDE)
        self._flow.validate_decide(req)

    @workflow.update(name=UPDATE_RESUBMIT)
    async def resubmit(self, req: Resubmission) -> RegistrationStatus:
        return await self._flow.resubmit(req)

    @resubmit.validator
    def _validate_resubmit(self, req: Resubmission) -> None:
        self._refuse_in_service(UPDATE_RESUBMIT)
        self._flow.validate_resubmit(req)

    @workflow.update(name=UPDATE_PAY)
    async def record_payment(self, req: PaymentRequest) -> PaymentResult:
        return await self._flow.record_payment(req)

    @record_payment.validator
    def _validate_payment(self, req: PaymentRequest) -> None:
        self._refuse_in_service(UPDATE_PAY)
        self._flow.validate_payment(req)

    @workflow.update(name=UPDATE_VERIFY)
    async def verify(self, req: VerificationRequest) -> RegistrationStatus:
        return await self._flow.verify(req)

    @verify.validator
    def _validate_verify(self, req: VerificationRequest) -> None:
        self._refuse_in_service(UPDATE_VERIFY)
        self._flow.validate_verify(req)

    @workflow.update(name=UPDATE_WITHDRAW)
    async def withdraw(self, req: WithdrawalRequest) -> RegistrationStatus:
        return await self._flow.withdraw(req)

    @withdraw.validator
    def _validate_withdraw(self, req: WithdrawalRequest) -> None:
        self._refuse_in_service(UPDATE_WITHDRAW)
        self._flow.validate_withdraw(req)

    def _refuse_in_service(self, update: str) -> None:
        """Once the run serves the number, the registration's own steps are
        refused as the service workflow refuses them."""
        if self._service is not None:
            self._service.refuse_unknown_update(update)

    @workflow.update(dynamic=True)
    def unknown_update(self, name: str, args: Sequence[RawValue]) -> None:
        """Never runs: its validator refuses every Update not declared above."""

    @unknown_update.validator
    def _validate_unknown_update(self, name: str, args: Sequence[RawValue]) -> None:
        self._refuse_in_service(name)
        self._flow.refuse_unknown_update(name)

    @workflow.query(name=QUERY_STATUS)
    def status(self) -> RegistrationStatus:
        """The registration's status, and from ACTIVE on the service's (a
        ``ServiceStatus``), as the service workflow answers it."""
        if self._service is not None:
            return self._service.status()
        return self._flow.status()
