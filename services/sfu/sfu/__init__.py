"""The SFU: an asyncio process on aiortc that forwards encoded media (docs/architecture.md, "Calls and the SFU")."""
