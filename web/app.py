"""The operator console: server-rendered pages under ``/console`` in the API's process.

Mounted as a sub-application of the API (``mount_console``) so it has its own
error pages and security headers, while every page calls the API's services
with the API's pool, Temporal gateway and settings: one implementation of
every rule. Pages are Jinja2 templates; htmx swaps parts of them and follows
Server-Sent Events for live updates. Every script and stylesheet is a file
under ``web/static`` (vendored libraries with their licences), and the
Content-Security-Policy allows nothing inline.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import errors
from api.errors import ApiError, unavailable_service
from api.services.events import StreamSlots
from api.throttle import FailureWindow
from web import messages, views
from web.config import ConsoleSettings
from web.http import CsrfRefused, SignInRequired
from web.pages import applications, auth, dashboard, inventory, live, numbers, queue, staff, webhooks
from web.services.hashing import PasswordHashing

log = logging.getLogger("web")


CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'self'; frame-src 'self'; connect-src 'self'; font-src 'self'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'self'"
)


class SecurityHeadersMiddleware:
    """The console's security headers on every response (a route may set its own CSP)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("Content-Security-Policy", CSP)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("Referrer-Policy", "same-origin")
                headers.setdefault("X-Frame-Options", "SAMEORIGIN")
                headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
                if not scope["path"].startswith("/console/static/"):
                    headers.setdefault("Cache-Control", "no-store")
                elif b"v=" in scope.get("query_string", b""):
                    # Versioned by content (views.static_version): never revalidated.
                    headers["Cache-Control"] = "public, max-age=31536000, immutable"
            await send(message)

        await self.app(scope, receive, with_headers)


def create_console(parent: FastAPI, console_settings: ConsoleSettings | None = None) -> FastAPI:
    console = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    settings = console_settings or ConsoleSettings()
    console.state.parent = parent
    console.state.settings = settings
    console.state.password_hashing = PasswordHashing(
        settings.password_hashing_slots, settings.password_hashing_wait_seconds
    )
    console.state.sign_in_throttle = FailureWindow(settings.sign_ins_per_minute, 60)
    # A slot no stream gave back lapses after the longest a stream lasts, as the API's do.
    console.state.live_slots = StreamSlots(
        settings.live_streams_per_session, parent.state.api_settings.sse_max_stream_seconds + 60
    )
    console.add_middleware(SecurityHeadersMiddleware)
    console.mount("/static", StaticFiles(directory=views.STATIC), name="static")
    for module in (auth, queue, applications, numbers, dashboard, inventory, staff, webhooks, live):
        console.include_router(module.router)

    @console.exception_handler(SignInRequired)
    async def _sign_in(request: Request, exc: SignInRequired) -> Response:
        target = views.console_url(request, "/login")
        if request.headers.get("HX-Request"):
            return Response(status_code=401, headers={"HX-Redirect": target})
        return RedirectResponse(target, status_code=303)

    @console.exception_handler(CsrfRefused)
    async def _csrf(request: Request, exc: CsrfRefused) -> Response:
        return views.error_page(
            request, 403, views.gettext(request)("The form has expired; reload the page.")
        )

    @console.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> Response:
        # The error's headers too: Retry-After on a 503 or a 429 is part of the answer.
        return views.error_page(
            request,
            exc.status,
            messages.headline(request, exc),
            headers=exc.headers,
            errors=messages.field_errors(request, exc.errors),
        )

    @console.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        # A page, not FastAPI's JSON: an id mistyped in the address, a header out of bounds.
        _ = views.gettext(request)
        return views.error_page(
            request,
            422,
            _("The request has invalid fields."),
            errors=messages.field_errors(request, errors.validation_errors(exc)),
        )

    @console.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        return views.error_page(request, exc.status_code, str(exc.detail), headers=exc.headers)

    async def _unexpected(request: Request, exc: Exception) -> Response:
        _ = views.gettext(request)
        service = unavailable_service(exc)
        if service is not None:  # PostgreSQL or Temporal unreachable: 503, as the API answers
            log.warning(
                "backing service unavailable", extra={"service": service, "error": type(exc).__name__}
            )
            return views.error_page(
                request,
                503,
                _("A backing service is unavailable; retry shortly."),
                headers={"Retry-After": str(errors.RETRY_AFTER_SECONDS)},
            )
        log.exception("console error", extra={"path": request.url.path})
        return views.error_page(request, 500, _("Something went wrong."))

    for cls in errors.MAYBE_UNAVAILABLE:
        console.add_exception_handler(cls, _unexpected)  # type: ignore[arg-type]
    console.add_exception_handler(Exception, _unexpected)  # type: ignore[arg-type]

    @console.get("/", include_in_schema=False)
    async def home(request: Request) -> Response:
        return RedirectResponse(views.console_url(request, "/queue"), status_code=303)

    return console


def mount_console(app: FastAPI, console_settings: ConsoleSettings | None = None) -> None:
    app.mount("/console", create_console(app, console_settings))
