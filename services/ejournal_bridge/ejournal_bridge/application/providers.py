"""The e-journals an operator registers: secrets sealed and rotated, schools bound to platform organizations."""

from __future__ import annotations

import secrets
import uuid
from datetime import timedelta

from ejournal_bridge.application.base import BridgeBase
from ejournal_bridge.domain import Directory, Provider
from shared.clock import utcnow
from shared.contracts.api.ejournal_bridge import RegisterProvider
from shared.errors import Invalid
from shared.regions import region_code

COUNTRY = "RU"  # the regional e-journals are Russia's: a provider's region is a federal subject's code (EJ-1)


class Providers(BridgeBase):
    def register_provider(self, command: RegisterProvider) -> tuple[Provider, str]:
        """Returns the provider and its first webhook secret (shown once)."""
        region = region_code(COUNTRY, command.region, required=True)  # as an organization's (SC-2): "7" is "07"
        name, base_url = command.name, command.base_url
        if not base_url.startswith(("https://", "http://")):
            raise Invalid("provider.invalid_url", "The base URL is an http(s) URL.")
        webhook_secret = secrets.token_urlsafe(32)

        def register() -> Provider:
            directory = self.find(Directory, Directory.create_id()) or Directory()
            if any(p["region"] == region and p["name"].casefold() == name.casefold()
                   for p in directory.providers.values()):
                raise Invalid("provider.exists", "This region already has an e-journal of that name.")
            provider = Provider(region=region, name=name, base_url=base_url, client_id=command.client_id,
                                client_secret=self.box.seal(command.client_secret),
                                webhook_secret=self.box.seal(webhook_secret), registered_at=utcnow())
            directory.add(provider.id, region, name)
            self.save(directory, provider)
            return provider

        return self.retrying(register, "directory"), webhook_secret

    def providers(self, region: str | None = None) -> list[Provider]:
        region = region_code(COUNTRY, region)  # region.unknown for a code no region has
        directory = self.find(Directory, Directory.create_id())
        found = [self.provider(uuid.UUID(p)) for p, v in (directory.providers.items() if directory else [])
                 if region is None or v["region"] == region]
        return sorted(found, key=lambda p: (p.region, p.name))

    def rotate_secret(self, provider_id: uuid.UUID, grace: timedelta) -> str:
        """A new webhook secret; the old one keeps verifying until the grace period ends."""
        if not timedelta(0) <= grace <= timedelta(days=30):
            raise Invalid("provider.invalid_grace", "The grace period is 0 to 30 days.")
        new_secret = secrets.token_urlsafe(32)

        def command() -> str:
            provider = self.provider(provider_id)
            provider.rotate_secret(self.box.seal(new_secret), utcnow(), grace)
            self.save(provider)
            return new_secret

        return self.retrying(command, ("provider", provider_id))

    def reseal_secrets(self) -> int:
        """Every provider's secrets sealed with the newest of SFERA_SECRETS_KEYS (after a new
        key is put first; then the old one can be removed). How many providers changed."""
        directory = self.find(Directory, Directory.create_id())
        changed = 0
        for provider_id in map(uuid.UUID, directory.providers if directory else []):
            def command(provider_id: uuid.UUID = provider_id) -> bool:
                provider = self.provider(provider_id)
                if not provider.reseal(self.box.reseal):
                    return False
                self.save(provider)
                return True

            changed += self.retrying(command, ("provider", provider_id))
        return changed
