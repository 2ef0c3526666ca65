"""The ``application`` row: what an applicant sees of a submission from its first answer.

Written by whichever comes first of the API, once Temporal has accepted the
workflow start, and the workflow's apply step, in its transaction: the start
is the commit point of a submission, so no application is ever visible without
a workflow behind it, and none whose workflow runs stays invisible for want of
the API (it died between the start and its insert). Both writes are the same
idempotent statement.
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg


async def record_application(
    conn: asyncpg.Connection,
    *,
    application_id: str,
    organisation_id: str,
    workflow_id: str,
    carrier_code: str,
    company_name: str,
    submitted_by: str,
    document_ids: Sequence[str],
) -> None:
    """Insert the application (if not there yet) and attach the organisation's
    uploaded documents it names; ids that are not such a document are skipped."""
    await conn.execute(
        """WITH app AS (
               INSERT INTO application
                   (id, organisation_id, workflow_id, carrier_code, company_name, submitted_by,
                    workflow_started_at)
               VALUES ($1, $2, $3, $4, $5, $6, clock_timestamp())
               ON CONFLICT (id) DO NOTHING
           )
           INSERT INTO application_document (application_id, document_id)
           SELECT $1, d.id FROM document d WHERE d.id = ANY($7::text[]) AND d.organisation_id = $2
           ON CONFLICT DO NOTHING""",
        application_id,
        organisation_id,
        workflow_id,
        carrier_code,
        company_name,
        submitted_by,
        list(document_ids),
    )
