"""SIP signalling: a sans-I/O core (message, transaction, dialog, auth, registrar) and a thin asyncio adapter (transport, ua)."""
