"""Routes of the pages and their static files."""

from __future__ import annotations

from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from app.web import desk, displays, login, operations, pages
from app.web.templating import STATIC_DIR


def web_routes() -> list[BaseRoute]:
    return [
        Route("/", pages.home),
        Route("/login", login.login_page, methods=["GET", "POST"]),
        Route("/logout", login.logout, methods=["POST"]),
        Route("/board/{hospital_code}", pages.board),
        Route("/cabin/{cabin_id}", pages.cabin),
        Route("/pair/status", displays.pairing_status),
        Route("/doctor", pages.doctor_console),
        Route("/doctor/{doctor_id}", pages.doctor_console),
        Route("/t/{code}", pages.tracker),
        Route("/t/{code}/manifest.webmanifest", pages.tracker_manifest),
        Route("/push-sw.js", pages.push_service_worker),
        Route("/reception", pages.reception),
        Route("/reception/slip/{token_id}", pages.slip),
        Route("/reception/patients", pages.patient_results),
        Route("/reception/tokens", desk.desk_tokens),
        Route("/admin", pages.admin_page),
        Route("/operations", operations.operations_page),
        Route("/admin/lists/{which}", pages.admin_list),
        Route("/admin/message-preview", pages.message_preview),
        Route("/admin/abdm/counters/{counter_id}/qr", pages.abdm_counter_qr),
        Mount("/static", StaticFiles(directory=str(STATIC_DIR)), name="static"),
    ]
