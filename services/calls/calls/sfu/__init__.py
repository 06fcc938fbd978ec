"""The SFU: an asyncio process on aiortc that forwards encoded media (ARCHITECTURE.md, "Calls and the SFU")."""
