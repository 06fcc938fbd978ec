"""The public API v1: routes only; every rule lives in the services."""

from __future__ import annotations

import uuid

from flask import Blueprint, Response, current_app, g, jsonify, request

from gateway import schemas as s
from gateway import session_cookie
from gateway.endpoint import current_principal, endpoint
from shared.config import env_str
from shared.errors import Invalid
from shared.qr import FORMATS, render

api = Blueprint("api_v1", __name__, url_prefix="/api/v1")
QR_FORMATS = {"fmt": tuple(FORMATS)}  # qr.svg, qr.png
QR_MEDIA_TYPES = tuple(FORMATS.values())

AUTH_ERRORS = ("auth.required", "auth.invalid_token", "auth.token_expired")


def call(service: str, method: str, **kwargs):
    return current_app.extensions["rpc"].call(service, method, request_id=g.request_id, **kwargs)


def me() -> str:
    return str(g.principal.user_id)


def optional_me() -> str | None:
    """The signed-in person on a route that does not require signing in."""
    if not request.headers.get("Authorization"):
        return None
    return str(current_principal().user_id)


def client() -> str:
    """The caller's address, for rate limits (the first proxy hop is trusted when configured)."""
    if env_str("SFERA_TRUST_FORWARDED_FOR", "no") == "yes" and request.headers.get("X-Forwarded-For"):
        return request.headers["X-Forwarded-For"].split(",")[0].strip()
    return request.remote_addr or "unknown"


def device() -> str:
    return (request.headers.get("User-Agent") or "unknown device")[:200]


# -- sign-in (ID-1, ID-2, ID-4, ID-6) -------------------------------------------------------------

@api.post("/auth/sign-in-codes")
@endpoint(summary="Send a one-time sign-in code by SMS or flash call (ID-1)", tag="sign-in",
          body=s.SignInCodeRequest, response=s.SignInCodeIssued, status=201, auth=False,
          errors=("phone.invalid", "sign_in.resend_too_early", "sign_in.too_many_codes", "sign_in.too_many_requests",
                  "sign_in.delivery_failed"))
def request_sign_in_code(body: dict):
    return call("identity", "request_sign_in_code", phone=body["phone"], channel=body["channel"], client=client())


@api.post("/auth/email-codes")
@endpoint(summary="Send a code by e-mail: juniors registering through an invite that allows it (ID-4)",
          tag="sign-in", body=s.EmailCodeRequest, response=s.SignInCodeIssued, status=201, auth=False,
          errors=("email.invalid", "sign_in.email_not_allowed", "invite.not_found", "invite.expired"))
def request_email_code(body: dict):
    return call("identity", "request_email_code", email=body["email"], invite_token=body["invite_token"],
                client=client())


CONFIRM_ERRORS = ("sign_in.not_found", "sign_in.wrong_code", "sign_in.code_expired", "sign_in.too_many_attempts",
                  "sign_in.already_used")


@api.post("/auth/sign-in-codes/<uuid:challenge_id>/confirmation")
@endpoint(summary="Confirm the code: signs in, registering the account on first use (ID-1, ID-3)",
          tag="sign-in", body=s.CodeConfirmation, response=s.SignedIn, auth=False, errors=CONFIRM_ERRORS)
def confirm_sign_in(challenge_id: uuid.UUID, body: dict):
    return session_cookie.issued(call("identity", "confirm_sign_in", challenge_id=str(challenge_id), code=body["code"],
                                      device=device()))


@api.post("/auth/email-codes/<uuid:challenge_id>/confirmation")
@endpoint(summary="Confirm an e-mail code: registers the junior on first use (ID-4)",
          tag="sign-in", body=s.CodeConfirmation, response=s.SignedIn, auth=False, errors=CONFIRM_ERRORS)
def confirm_email_code(challenge_id: uuid.UUID, body: dict):
    return session_cookie.issued(call("identity", "confirm_sign_in", challenge_id=str(challenge_id), code=body["code"],
                                      device=device()))


@api.post("/auth/not-me")
@endpoint(summary="\"This is not me\": detach the phone from the account that had it and start a new one (ID-6)",
          tag="sign-in", body=s.NotMe, response=s.SignedIn, auth=False,
          errors=("sign_in.not_found", "sign_in.wrong_code", "sign_in.code_expired"))
def not_me(body: dict):
    return session_cookie.issued(call("identity", "confirm_sign_in", challenge_id=str(body["challenge_id"]),
                                      code=body["code"], device=device(), not_me=True))


@api.post("/auth/password-sign-in")
@endpoint(summary="Sign in with phone and password (ID-2)", tag="sign-in", body=s.PasswordSignIn,
          response=s.SignedIn, auth=False,
          errors=("sign_in.bad_credentials", "sign_in.too_many_attempts", "sign_in.too_many_requests"))
def password_sign_in(body: dict):
    return session_cookie.issued(call("identity", "sign_in_with_password", phone=body["phone"],
                                      password=body["password"], client=client(), device=device()))


@api.post("/auth/password-reset")
@endpoint(summary="\"Forgot password?\": a code sent to the phone sets a new password (ID-2)", tag="sign-in",
          body=s.PasswordReset, response=s.SignedIn, auth=False,
          errors=("sign_in.wrong_code", "password.too_weak", "account.not_found"))
def password_reset(body: dict):
    return session_cookie.issued(call("identity", "reset_password", challenge_id=str(body["challenge_id"]),
                                      code=body["code"], new_password=body["new_password"], device=device()))


@api.post("/auth/refresh")
@endpoint(summary="New access token; the refresh token rotates, a reused one ends the session (ID-8). Browsers "
                  "send 'X-Sfera-Session: cookie' and an empty body: the token is their httpOnly cookie",
          tag="sessions", body=s.RefreshRequest, response=s.Refreshed, auth=False,
          errors=("auth.invalid_refresh", "auth.refresh_reused", "auth.session_revoked", "auth.session_expired",
                  "auth.refresh_header_required", "auth.origin_refused"))
def refresh(body: dict):
    token = session_cookie.refresh_token(body.get("refresh_token"))
    return session_cookie.refreshed(lambda: call("identity", "refresh", refresh_token=token))


# -- the signed-in person -----------------------------------------------------------------------------

@api.get("/me")
@endpoint(summary="The signed-in person's own profile", tag="profile", response=s.PersonView, errors=AUTH_ERRORS)
def get_me():
    return call("identity", "get_person", actor_id=me(), user_id=me())


@api.put("/me/profile")
@endpoint(summary="Fill in or edit one's profile: names, date of birth, sex (ID-5)", tag="profile",
          body=s.ProfileInput, response=s.PersonView, errors=("profile.invalid",))
def put_profile(body: dict):
    return call("identity", "update_profile", actor_id=me(), user_id=me(), profile=s.ProfileInput().dump(body))


@api.put("/me/password")
@endpoint(summary="Set or change one's password (ID-2)", tag="profile", body=s.PasswordChange, status=204,
          errors=("password.too_weak", "password.current_wrong"))
def put_password(body: dict):
    call("identity", "set_password", actor_id=me(), new_password=body["new_password"],
         current_password=body["current_password"])


@api.get("/me/sessions")
@endpoint(summary="One's sessions: device and last use (ID-8)", tag="sessions", response=s.SessionView, many=True)
def list_sessions():
    return call("identity", "list_sessions", actor_id=me(), current_session_id=g.principal.session_id)


@api.delete("/me/sessions/<uuid:session_id>")
@endpoint(summary="Sign out one session (ID-8)", tag="sessions", status=204, errors=("session.not_found",))
def delete_session(session_id: uuid.UUID):
    call("identity", "sign_out", actor_id=me(), session_id=str(session_id))
    if str(session_id) == str(g.principal.session_id):  # this device signed out: its cookie goes too
        return session_cookie.cleared(Response(status=204))


@api.delete("/me/sessions")
@endpoint(summary="Sign out everywhere; ?keep=current keeps this session (ID-8)", tag="sessions",
          response=s.SignedOutCount)
def delete_sessions():
    keep = g.principal.session_id if request.args.get("keep") == "current" else None
    result = call("identity", "sign_out_everywhere", actor_id=me(), keep_session_id=keep)
    return result if keep else session_cookie.cleared(jsonify(result))


@api.get("/people/<uuid:user_id>")
@endpoint(summary="A person as you may see them (privacy rules in identity)", tag="profile",
          response=s.PersonView, errors=("account.not_found",))
def get_person(user_id: uuid.UUID):
    return call("identity", "get_person", actor_id=me(), user_id=str(user_id))


@api.put("/people/<uuid:user_id>/profile")
@endpoint(summary="A parent corrects their child's profile (PL-3)", tag="parents", body=s.ProfileInput,
          response=s.PersonView, errors=("profile.forbidden", "profile.invalid"))
def put_person_profile(user_id: uuid.UUID, body: dict):
    return call("identity", "update_profile", actor_id=me(), user_id=str(user_id),
                profile=s.ProfileInput().dump(body))


# -- parents (PL-*) -------------------------------------------------------------------------------------

def public_url(path: str = "") -> str:
    """Where people reach the platform (links, QR codes, OAuth returns, webhook URLs)."""
    return f"{env_str('SFERA_PUBLIC_URL', 'http://localhost:8080').rstrip('/')}{path}"


def qr_format(fmt: str) -> str:
    """A QR code's format from the path (svg or png); any other is refused before a service is asked."""
    if fmt not in FORMATS:
        raise Invalid("qr.unknown_format", "QR codes come as svg or png.")
    return fmt


def qr_response(fmt: str, text: str, **headers: str) -> Response:
    """``text`` (a link) as a QR code in ``fmt`` (svg or png)."""
    image, media_type = render(text, qr_format(fmt))
    return Response(image, mimetype=media_type, headers=headers)


def parent_invite_url(token: str) -> str:
    return public_url(f"/parent-invite/{token}")


@api.get("/me/parent-invite")
@endpoint(summary="The student's link for parents: the live one again, or a new one (PL-1, PL-2); "
                  "status used_up and no link once two parents are linked (PL-5)", tag="parents",
          response=s.ParentInviteLink, errors=("parent_link.students_only",))
def get_parent_invite():
    invite = call("identity", "parent_invite", actor_id=me())
    return {**invite, "url": parent_invite_url(invite["token"])} if invite.get("token") else invite


@api.get("/me/parent-invite/qr.<fmt>")
@endpoint(summary="The parent link as a QR code: qr.svg or qr.png (PL-2)", tag="parents",
          produces=QR_MEDIA_TYPES, path_enums=QR_FORMATS,
          errors=("parent_link.students_only", "parent_link.limit_reached"))
def get_parent_invite_qr(fmt: str):
    qr_format(fmt)
    invite = call("identity", "parent_invite", actor_id=me(), to_share=True)
    # no-store (the API's default): one address for every pupil, so a browser kept one pupil's QR code (their
    # live token) for the next who signed in on that computer, and the old code after 'New link'
    return qr_response(fmt, parent_invite_url(invite["token"]))


@api.delete("/me/parent-invite")
@endpoint(summary="The student revokes their link for parents (a QR code seen by the wrong person): the old link "
                  "stops working and the next one shown is new (PL-2)", tag="parents", status=204,
          errors=("parent_link.revoke_forbidden",))
def revoke_parent_invite():
    call("identity", "revoke_parent_invite", actor_id=me(), child_id=me())


@api.delete("/children/<uuid:child_id>/parent-invite")
@endpoint(summary="Revoke a child's link for parents: by the child, a parent of theirs or an admin of the child's "
                  "school; the next one shown is new (PL-2)", tag="parents", status=204,
          errors=("parent_link.revoke_forbidden",))
def revoke_childs_parent_invite(child_id: uuid.UUID):
    call("identity", "revoke_parent_invite", actor_id=me(), child_id=str(child_id))


@api.get("/parent-invites/<token>")
@endpoint(summary="A parent opens the link (PL-3, PL-6): before signing in, whose link it is (first name, last "
                  "initial, schools: ParentInvitePreview); signed in, the child's data to check", tag="parents",
          response=s.ParentInviteOpened, auth=False,
          errors=("parent_link.not_found", "parent_link.expired", "parent_link.revoked", "parent_link.self_link",
                  "parent_link.limit_reached", "parent_link.already_linked", *AUTH_ERRORS))
def open_parent_invite(token: str):
    viewer = optional_me()
    if viewer is None:
        preview = call("identity", "preview_parent_invite", token=token)
        preview["schools"] = [{"organization_id": o, "name": call("school", "get_organization", organization_id=o)
                               ["name"]} for o in preview["organization_ids"]]
        return preview
    return call("identity", "open_parent_invite", actor_id=viewer, token=token)


@api.post("/parent-invites/<token>/confirmation")
@endpoint(summary="The parent consents and confirms the child's registration (PL-3, PL-4, PL-5)", tag="parents",
          body=s.ParentLinkConfirmation, response=s.LinkCreated, status=201,
          errors=("parent_link.consent_required", "parent_link.self_link", "parent_link.limit_reached",
                  "parent_link.expired", "parent_link.revoked", "parent_link.already_linked"))
def confirm_parent_link(token: str, body: dict):
    child = s.ProfileInput().dump(body["child"]) if body["child"] else None
    return call("identity", "confirm_parent_link", actor_id=me(), token=token, consent=body["consent"], child=child)


@api.get("/me/children")
@endpoint(summary="One's children (PL-4, PL-7)", tag="parents", response=s.PersonView, many=True)
def get_children():
    return call("identity", "children", actor_id=me())


@api.get("/me/parents")
@endpoint(summary="One's parents (PL-4)", tag="parents", response=s.PersonView, many=True)
def get_parents():
    return call("identity", "parents", actor_id=me())


@api.delete("/children/<uuid:child_id>/parents/<uuid:parent_id>")
@endpoint(summary="Remove a parent link: by the parent or an admin of the child's school; the child's link for "
                  "parents is revoked with it, the next one shown is new (PL-5)", tag="parents",
          status=204, errors=("parent_link.not_found", "parent_link.unlink_forbidden"))
def unlink_parent(child_id: uuid.UUID, parent_id: uuid.UUID):
    call("identity", "unlink_parent", actor_id=me(), child_id=str(child_id), parent_id=str(parent_id))
