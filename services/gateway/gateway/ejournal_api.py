"""The public API v1 of the e-journal integration (EJ-1, EJ-2): providers to
pick from, account linking through the journal's OAuth sign-in, the webhook
endpoint each regional e-journal posts to, and the operators' provider
management. Routes only; the bridge verifies signatures and decides."""

from __future__ import annotations

import uuid

from flask import request
from marshmallow import Schema, fields, validate

from gateway.api import api, call, me, public_url
from gateway.endpoint import endpoint
from gateway.input import check_raw_json
from shared.config import env_int
from shared.contracts.api import ejournal_bridge as bridge
from shared.contracts.api import messaging
from shared.errors import Invalid

LINK_ERRORS = ("link.not_found", "link.expired", "link.already_used", "link.code_rejected", "link.denied",
               "ejournal.unavailable")


def callback_url() -> str:
    """Where the journal sends the person back: the web client's page (issue #14), which hands
    state and code to GET /api/v1/ejournal/callback and shows the link (not raw JSON)."""
    return public_url("/ejournal/callback")


def webhook_base() -> str:
    return public_url("/api/v1/ejournal/webhooks")


class ProvidersQuery(Schema):
    region = fields.String(load_default=None, validate=validate.Length(min=1, max=10))


class CallbackQuery(Schema):
    state = fields.String(load_default="")
    code = fields.String(load_default="")
    error = fields.String(load_default=None, metadata={"description": "The journal refused (e.g. access_denied)"})


@api.get("/ejournal/providers")
@endpoint(summary="Regional e-journals to link with: choose the region, then the e-journal (EJ-1)", tag="e-journal",
          query=ProvidersQuery, response=bridge.ProviderView, many=True, errors=("region.unknown",))
def list_providers(query: dict):
    return call("ejournal_bridge", "providers", region=query["region"])


@api.post("/ejournal/links")
@endpoint(summary="Start linking one's e-journal account: where to sign in there (EJ-1). The journal's own "
                  "\"connect\" button lands here too, with provider_id and login_hint", tag="e-journal",
          body=bridge.LinkStart, response=bridge.LinkStarted, status=201, errors=("provider.not_found",))
def start_link(body: dict):
    return call("ejournal_bridge", "start_link", actor_id=me(), provider_id=str(body["provider_id"]),
                redirect_uri=callback_url(), login_hint=body["login_hint"])


@api.get("/ejournal/callback")
@endpoint(summary="Where the e-journal sends the person back after signing in: the link is recorded (EJ-1, EJ-2), "
                  "for the account that started it only (the client's page asks it signed in)",
          tag="e-journal", query=CallbackQuery, response=bridge.LinkView, errors=(*LINK_ERRORS, "link.not_yours"))
def link_callback(query: dict):
    if query["error"]:
        raise Invalid("link.denied", "The e-journal did not confirm the sign-in.", {"error": query["error"]})
    if not query["state"] or not query["code"]:
        raise Invalid("link.not_found", "The e-journal sent no code; start again.")
    return call("ejournal_bridge", "finish_link", actor_id=me(), state=query["state"], code=query["code"],
                redirect_uri=callback_url())


@api.get("/ejournal/providers/<uuid:provider_id>/lessons/<external_lesson_id>/chat")
@endpoint(summary="The chat of a journal lesson, for the journal's and diary's lesson pages (EJ-7): its subject "
                  "chat, to its members", tag="e-journal", response=messaging.ChatView,
          errors=("provider.not_found", "lesson.not_found", "chat.not_found", "chat.members_only"))
def lesson_chat(provider_id: uuid.UUID, external_lesson_id: str):
    key = call("ejournal_bridge", "lesson_chat_key", provider_id=str(provider_id),
               external_lesson_id=external_lesson_id)["key"]
    return call("messaging", "chat_by_key", actor_id=me(), key=key)


class LessonsQuery(Schema):
    start = fields.AwareDateTime(data_key="from", load_default=None,
                                 metadata={"description": "ISO 8601 with offset; default: the start of today (UTC)"})
    end = fields.AwareDateTime(data_key="to", load_default=None,
                               metadata={"description": "Default: seven days after 'from'; at most 31 days after"})


@api.get("/me/lessons")
@endpoint(summary="One's timetable from the linked e-journals: a pupil's, a parent's children's and the lessons a "
                  "teacher teaches, with each lesson's call under way and what one can do (join, start) "
                  "(EJ-5, SC-13)", tag="e-journal", query=LessonsQuery, response=bridge.MyLesson, many=True,
          errors=("lessons.invalid_range",))
def my_lessons(query: dict):
    return call("ejournal_bridge", "my_lessons", actor_id=me(),
                start=query["start"].isoformat() if query["start"] else None,
                end=query["end"].isoformat() if query["end"] else None)


@api.get("/me/ejournal-links")
@endpoint(summary="One's linked e-journal accounts", tag="e-journal", response=bridge.LinkView, many=True)
def my_links():
    return call("ejournal_bridge", "links", actor_id=me())


@api.delete("/me/ejournal-links/<uuid:provider_id>")
@endpoint(summary="Unlink an e-journal account: its journal chats are left", tag="e-journal", status=204,
          errors=("link.not_found",))
def unlink(provider_id: uuid.UUID):
    call("ejournal_bridge", "unlink", actor_id=me(), provider_id=str(provider_id))


@api.post("/ejournal/webhooks/<uuid:provider_id>")
@endpoint(summary="A regional e-journal's webhook (docs/ejournal/webhook.schema.json): signed with HMAC-SHA256 "
                  "over '<X-Sfera-Timestamp>.<body>' in X-Sfera-Signature; stored, then processed; a repeated "
                  "event_id changes nothing", tag="e-journal", response=bridge.DeliveryAccepted, status=202,
          max_bytes=lambda: env_int("SFERA_WEBHOOK_MAX_BYTES", 8 << 20),
          auth=False, errors=("provider.not_found", "webhook.bad_signature", "webhook.stale", "webhook.bad_timestamp",
                              "webhook.malformed"))
def receive_webhook(provider_id: uuid.UUID):
    check_raw_json(request.get_data())
    return call("ejournal_bridge", "receive_webhook", provider_id=str(provider_id),
                timestamp=request.headers.get("X-Sfera-Timestamp", ""),
                signature=request.headers.get("X-Sfera-Signature", ""),
                body=request.get_data().decode("utf-8", errors="replace"))


# -- operators ----------------------------------------------------------------------------------------------

@api.post("/operator/ejournal-providers")
@endpoint(summary="Register a region's e-journal: its webhook secret is shown once", tag="operators",
          body=bridge.ProviderInput, response=bridge.ProviderCreated, status=201,
          errors=("operator.required", "provider.exists", "provider.invalid_url", "region.unknown"))
def register_provider(body: dict):
    return call("ejournal_bridge", "register_provider", actor_id=me(),
                provider={**body, "base_url": body["base_url"]}, webhook_base=webhook_base())


@api.get("/operator/ejournal-providers/<uuid:provider_id>")
@endpoint(summary="An e-journal: its webhook URL, the schools it sent and which are bound", tag="operators",
          response=bridge.ProviderDetail, errors=("operator.required", "provider.not_found"))
def provider_detail(provider_id: uuid.UUID):
    return call("ejournal_bridge", "provider_detail", actor_id=me(), provider_id=str(provider_id),
                webhook_base=webhook_base())


@api.post("/operator/ejournal-providers/<uuid:provider_id>/webhook-secret")
@endpoint(summary="Rotate the webhook secret; the old one works until the grace period ends", tag="operators",
          body=bridge.RotationInput, response=bridge.SecretView, status=201,
          errors=("operator.required", "provider.not_found", "provider.invalid_grace"))
def rotate_secret(provider_id: uuid.UUID, body: dict):
    return call("ejournal_bridge", "rotate_secret", actor_id=me(), provider_id=str(provider_id),
                grace_seconds=body["grace_seconds"])


@api.put("/operator/ejournal-providers/<uuid:provider_id>/schools/<external_org_id>")
@endpoint(summary="Bind a journal's school to a platform organization (its chats belong to it): answers at once; "
                  "the resync of its chats and people runs in the background, its progress on the binding",
          tag="operators", body=bridge.SchoolBinding, response=bridge.BindingView, status=202,
          errors=("operator.required", "provider.not_found"))
def bind_school(provider_id: uuid.UUID, external_org_id: str, body: dict):
    return call("ejournal_bridge", "bind_school", actor_id=me(), provider_id=str(provider_id),
                external_org_id=external_org_id, organization_id=str(body["organization_id"]))


@api.get("/operator/ejournal-providers/<uuid:provider_id>/schools/<external_org_id>")
@endpoint(summary="A bound school: its organization and its resync's progress (pending, running, done, failed)",
          tag="operators", response=bridge.BindingView,
          errors=("operator.required", "provider.not_found", "binding.not_found"))
def school_binding(provider_id: uuid.UUID, external_org_id: str):
    return call("ejournal_bridge", "school_binding", actor_id=me(), provider_id=str(provider_id),
                external_org_id=external_org_id)


@api.post("/operator/ejournal-providers/<uuid:provider_id>/replay")
@endpoint(summary="Process the provider's whole inbox again (in the background; its state shows on the "
                  "provider): the same chats come out, not copies", tag="operators", response=bridge.ReplayView,
          status=202, errors=("operator.required", "provider.not_found"))
def replay_inbox(provider_id: uuid.UUID):
    return call("ejournal_bridge", "request_replay", actor_id=me(), provider_id=str(provider_id))
