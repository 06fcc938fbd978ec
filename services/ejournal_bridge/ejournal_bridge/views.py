"""What the bridge answers of its providers, bindings and links, as the API's schemas say it: for its RPCs
(``service``) and for the operator's console (``operator``) alike."""

from __future__ import annotations

from shared.contracts.api import ejournal_bridge as schemas


def binding(resync) -> dict:
    return {**vars(resync), "resync": vars(resync)}


def binding_view(resync) -> dict:
    return schemas.BindingView().dump(binding(resync))


def provider_view(provider) -> dict:
    return schemas.ProviderView().dump({**vars(provider), "provider_id": provider.id})


def provider_detail(provider, webhook_url: str | None = None, bindings: list | None = None) -> dict:
    return schemas.ProviderDetail().dump({**vars(provider), "provider_id": provider.id,
                                          "webhook_url": webhook_url or "",
                                          "bindings": [binding(r) for r in bindings or []]})


def provider_created(provider, webhook_base: str, secret: str) -> dict:
    """A provider just registered, with its webhook URL under ``webhook_base`` and its first secret (shown once)."""
    return schemas.ProviderCreated().dump({
        **provider_detail(provider, f"{webhook_base.rstrip('/')}/{provider.id}"), "webhook_secret": secret})


def link_view(link) -> dict:
    return schemas.LinkView().dump({**vars(link), "linked_at": link.linked_at.isoformat()})
