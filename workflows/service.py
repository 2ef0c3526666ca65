"""The service workflow: a registration's life after ACTIVE (billing, arrears,
staged suspension, real-name compliance, reclaim).

It continues the registration under the same workflow id, for as long as the
number is in service, which is years. A registration's own run serves as the
service from ACTIVE until the service first continues as new (a year of billing
cycles by default); every run after that is this workflow.

This module is the Temporal face of the service: the workflow's name, its
Updates (each with a validator, in ``ServiceUpdates``, which the registration
workflow shares) and its Query, as ``workflows/service_contracts.py``
names them. Every call goes to ``ServiceFlow`` (workflows/service_flow.py), which
holds the logic. Like the registration it runs outside the Python SDK's sandbox
(see ``workflows/registration.py``).
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


class ServiceUpdates:
    """The service's Updates, each with its validator, for every workflow that
    can be in service: this one, and the registration, whose run carries on as
    the service from ACTIVE. ``_serving`` names the
    ``ServiceFlow`` that takes them, or refuses the Update in the caller's words
    while there is none yet."""

    def _serving(self, update: str) -> ServiceFlow:
        raise NotImplementedError

    @workflow.update(name=UPDATE_SERVICE_PAY)
    async def pay(self, req: PaymentRequest) -> ServicePaymentResult:
        return await self._serving(UPDATE_SERVICE_PAY).pay(req)

    @pay.validator
    def _validate_pay(self, req: PaymentRequest) -> None:
        self._serving(UPDATE_SERVICE_PAY).validate_pay(req)

    @workflow.update(name=UPDATE_OPERATOR_SUSPEND)
    async def operator_suspend(self, req: OperatorAction) -> ServiceStatus:
        return await self._serving(UPDATE_OPERATOR_SUSPEND).operator_suspend(req)

    @operator_suspend.validator
    def _validate_operator_suspend(self, req: OperatorAction) -> None:
        self._serving(UPDATE_OPERATOR_SUSPEND).validate_operator_suspend(req)

    @workflow.update(name=UPDATE_OPERATOR_RESUME)
    async def operator_resume(self, req: OperatorAction) -> ServiceStatus:
        return await self._serving(UPDATE_OPERATOR_RESUME).operator_resume(req)

    @operator_resume.validator
    def _validate_operator_resume(self, req: OperatorAction) -> None:
        self._serving(UPDATE_OPERATOR_RESUME).validate_operator_resume(req)

    @workflow.update(name=UPDATE_TERMINATE)
    async def terminate(self, req: TerminationRequest) -> ServiceStatus:
        return await self._serving(UPDATE_TERMINATE).terminate(req)

    @terminate.validator
    def _validate_terminate(self, req: TerminationRequest) -> None:
        self._serving(UPDATE_TERMINATE).validate_terminate(req)

    @workflow.update(name=UPDATE_REPORT_DETAILS_CHANGE)
    async def report_details_change(self, req: DetailsChangeReport) -> DetailsChangeResult:
        return await self._serving(UPDATE_REPORT_DETAILS_CHANGE).report_details_change(req)

    @report_details_change.validator
    def _validate_report_details_change(self, req: DetailsChangeReport) -> None:
        self._serving(UPDATE_REPORT_DETAILS_CHANGE).validate_report_details_change(req)

    @workflow.update(name=UPDATE_CONFIRM_REALNAME)
    async def confirm_realname(self, req: RealnameConfirmation) -> ServiceStatus:
        return await self._serving(UPDATE_CONFIRM_REALNAME).confirm_realname(req)

    @confirm_realname.validator
    def _validate_confirm_realname(self, req: RealnameConfirmation) -> None:
        self._serving(UPDATE_CONFIRM_REALNAME).validate_confirm_realname(req)


@workflow.defn(name=SERVICE_WORKFLOW_NAME, sandboxed=False)
class ServiceWorkflow(ServiceUpdates):
    @workflow.init
    def __init__(self, inp: ServiceInput) -> None:
        self._flow = ServiceFlow(inp)

    @workflow.run
    async def run(self, inp: ServiceInput) -> ServiceResult:
        return await self._flow.run()

    def _serving(self, update: str) -> ServiceFlow:
        return self._flow

    @workflow.update(dynamic=True)
    def unknown_update(self, name: str, args: Sequence[RawValue]) -> None:
        """Never runs: its validator refuses every Update not declared above."""

    @unknown_update.validator
    def _validate_unknown_update(self, name: str, args: Sequence[RawValue]) -> None:
        self._flow.refuse_unknown_update(name)

    @workflow.query(name=QUERY_SERVICE_STATUS)
    def status(self) -> ServiceStatus:
        return self._flow.status()
