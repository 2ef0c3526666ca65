"""The service workflow: a registration's life after ACTIVE (billing, arrears,
staged suspension, real-name compliance, reclaim).

It continues the registration under the same workflow id: the registration
workflow hands over at ACTIVE with ``continue_as_new(..., workflow=SERVICE_WORKFLOW_NAME)``
and this runs for as long as the number is in service, which is years.

This module is the Temporal face of the service: the workflow's name, its
Updates (each with a validator) and its Query, as ``workflows/service_contracts.py``
names them. Every call goes to ``ServiceFlow`` (workflows/service_flow.py), which
holds the logic. Like the registration it runs outside the Python SDK's sandbox
(see ``workflows/registration_flow.py``).
"""

from __future__ import annotations

from collections.abc import Sequence

from temporalio import workflow
from temporalio.common import RawValue

with workflow.unsafe.imports_passed_through():
    from workflows.contracts import PaymentRequest
    from workflows.service_contracts import (
        QUERY_SERVICE_STATUS,
        SERVICE_WORKFLOW_NAME,
        UPDATE_CONFIRM_REALNAME,
        UPDATE_OPERATOR_RESUME,
        UPDATE_OPERATOR_SUSPEND,
        UPDATE_REPORT_DETAILS_CHANGE,
        UPDATE_SERVICE_PAY,
        UPDATE_TERMINATE,
        DetailsChangeReport,
        DetailsChangeResult,
        OperatorAction,
        RealnameConfirmation,
        ServiceInput,
        ServicePaymentResult,
        ServiceResult,
        ServiceStatus,
        TerminationRequest,
    )
    from workflows.service_flow import ServiceFlow


@workflow.defn(name=SERVICE_WORKFLOW_NAME, sandboxed=False)
class ServiceWorkflow:
    @workflow.init
    def __init__(self, inp: ServiceInput) -> None:
        self._flow = ServiceFlow(inp)

    @workflow.run
    async def run(self, inp: ServiceInput) -> ServiceResult:
        return await self._flow.run()

    @workflow.update(name=UPDATE_SERVICE_PAY)
    async def pay(self, req: PaymentRequest) -> ServicePaymentResult:
        return await self._flow.pay(req)

    @pay.validator
    def _validate_pay(self, req: PaymentRequest) -> None:
        self._flow.validate_pay(req)

    @workflow.update(name=UPDATE_OPERATOR_SUSPEND)
    async def operator_suspend(self, req: OperatorAction) -> ServiceStatus:
        return await self._flow.operator_suspend(req)

    @operator_suspend.validator
    def _validate_operator_suspend(self, req: OperatorAction) -> None:
        self._flow.validate_operator_suspend(req)

    @workflow.update(name=UPDATE_OPERATOR_RESUME)
    async def operator_resume(self, req: OperatorAction) -> ServiceStatus:
        return await self._flow.operator_resume(req)

    @operator_resume.validator
    def _validate_operator_resume(self, req: OperatorAction) -> None:
        self._flow.validate_operator_resume(req)

    @workflow.update(name=UPDATE_TERMINATE)
    async def terminate(self, req: TerminationRequest) -> ServiceStatus:
        return await self._flow.terminate(req)

    @terminate.validator
    def _validate_terminate(self, req: TerminationRequest) -> None:
        self._flow.validate_terminate(req)

    @workflow.update(name=UPDATE_REPORT_DETAILS_CHANGE)
    async def report_details_change(self, req: DetailsChangeReport) -> DetailsChangeResult:
        return await self._flow.report_details_change(req)

    @report_details_change.validator
    def _validate_report_details_change(self, req: DetailsChangeReport) -> None:
        self._flow.validate_report_details_change(req)

    @workflow.update(name=UPDATE_CONFIRM_REALNAME)
    async def confirm_realname(self, req: RealnameConfirmation) -> ServiceStatus:
        return await self._flow.confirm_realname(req)

    @confirm_realname.validator
    def _validate_confirm_realname(self, req: RealnameConfirmation) -> None:
        self._flow.validate_confirm_realname(req)

    @workflow.update(dynamic=True)
    def unknown_update(self, name: str, args: Sequence[RawValue]) -> None:
        """Never runs: its validator refuses every Update not declared above."""

    @unknown_update.validator
    def _validate_unknown_update(self, name: str, args: Sequence[RawValue]) -> None:
        self._flow.refuse_unknown_update(name)

    @workflow.query(name=QUERY_SERVICE_STATUS)
    def status(self) -> ServiceStatus:
        return self._flow.status()
