"""The registration workflow: apply, audit, allocate, verify, activate.

One execution per application, id ``registration_workflow_id(application_id)``.
This module is the Temporal face of a registration: the workflow's name, its
Updates (each with a validator) and its Query, as ``workflows/contracts.py``
names them. Every call goes to ``RegistrationFlow`` (workflows/registration_flow.py),
which holds the logic. The workflow runs outside the Python SDK's sandbox: see
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


@workflow.defn(name=WORKFLOW_NAME, sandboxed=False)
class RegistrationWorkflow:
    @workflow.init
    def __init__(self, inp: RegistrationInput) -> None:
        self._flow = RegistrationFlow(inp)

    @workflow.run
    async def run(self, inp: RegistrationInput) -> RegistrationResult:
        return await self._flow.run()

    @workflow.update(name=UPDATE_SUBMISSION)
    async def submission(self) -> RegistrationStatus:
        """Answers once the apply step is done: submitted, or refused and why."""
        return await self._flow.submission()

    @workflow.update(name=UPDATE_DECIDE)
    async def decide(self, req: DecisionRequest) -> RegistrationStatus:
        return await self._flow.decide(req)

    @decide.validator
    def _validate_decide(self, req: DecisionRequest) -> None:
        self._flow.validate_decide(req)

    @workflow.update(name=UPDATE_RESUBMIT)
    async def resubmit(self, req: Resubmission) -> RegistrationStatus:
        return await self._flow.resubmit(req)

    @resubmit.validator
    def _validate_resubmit(self, req: Resubmission) -> None:
        self._flow.validate_resubmit(req)

    @workflow.update(name=UPDATE_PAY)
    async def record_payment(self, req: PaymentRequest) -> PaymentResult:
        return await self._flow.record_payment(req)

    @record_payment.validator
    def _validate_payment(self, req: PaymentRequest) -> None:
        self._flow.validate_payment(req)

    @workflow.update(name=UPDATE_VERIFY)
    async def verify(self, req: VerificationRequest) -> RegistrationStatus:
        return await self._flow.verify(req)

    @verify.validator
    def _validate_verify(self, req: VerificationRequest) -> None:
        self._flow.validate_verify(req)

    @workflow.update(name=UPDATE_WITHDRAW)
    async def withdraw(self, req: WithdrawalRequest) -> RegistrationStatus:
        return await self._flow.withdraw(req)

    @withdraw.validator
    def _validate_withdraw(self, req: WithdrawalRequest) -> None:
        self._flow.validate_withdraw(req)

    @workflow.update(dynamic=True)
    def unknown_update(self, name: str, args: Sequence[RawValue]) -> None:
        """Never runs: its validator refuses every Update not declared above."""

    @unknown_update.validator
    def _validate_unknown_update(self, name: str, args: Sequence[RawValue]) -> None:
        self._flow.refuse_unknown_update(name)

    @workflow.query(name=QUERY_STATUS)
    def status(self) -> RegistrationStatus:
        return self._flow.status()
