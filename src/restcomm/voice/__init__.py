"""Voice: calls, their records and status callbacks, recordings, and the seam to the SIP/media engine.

- ``voice.store``: the call and recording records (written in the caller's transaction), list
  filters, status callbacks queued in the outbox, recovery of calls whose node died, the SIP
  registrar's bindings, and the SIP trunks (configured and from the Gateways API).
- ``voice.recovery``: the background sweep that closes calls a dead node left live.
- ``voice.ports``: the Protocols the API uses to reach the engine (``CallPlacer``, ``CallControl``).
"""
