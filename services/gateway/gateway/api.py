"""The public API v1: routes only; every rule lives in the services."""

from __future__ import annotations

import uuid

from flask import Blueprint, current_app, g

from gateway.endpoint import endpoint
from gateway.schemas import AccountView, SignedIn, SignInCodeConfirmation, SignInCodeIssued, SignInCodeRequest

api = Blueprint("api_v1", __name__, url_prefix="/api/v1")


def call(service: str, method: str, **kwargs):
    return current_app.extensions["rpc"].call(service, method, request_id=g.request_id, **kwargs)


@api.post("/auth/sign-in-codes")
@endpoint(summary="Send a one-time sign-in code to a phone (ID-1)", tag="auth", body=SignInCodeRequest,
          response=SignInCodeIssued, status=201, auth=False, errors=("phone.invalid",))
def request_sign_in_code(body: dict):
    return call("identity", "request_sign_in_code", phone=body["phone"])


@api.post("/auth/sign-in-codes/<uuid:challenge_id>/confirmation")
@endpoint(summary="Confirm the code: signs in, registering a new account on first use (ID-1, ID-3)",
          tag="auth", body=SignInCodeConfirmation, response=SignedIn, auth=False,
          errors=("sign_in.not_found", "sign_in.wrong_code", "sign_in.code_expired",
                  "sign_in.too_many_attempts", "sign_in.already_used"))
def confirm_sign_in(challenge_id: uuid.UUID, body: dict):
    return call("identity", "confirm_sign_in", challenge_id=str(challenge_id), code=body["code"])


@api.get("/me")
@endpoint(summary="The signed-in person's own account", tag="accounts", response=AccountView,
          errors=("auth.required", "auth.invalid_token", "auth.token_expired"))
def me():
    user_id = str(g.principal.user_id)
    return call("identity", "get_account", actor_id=user_id, account_id=user_id)
