"""Voice: calls, their records and status callbacks, recordings, and the seam to the SIP/media engine.

- ``voice.store``: the call and recording records (written in the caller's transaction), list
  filters, status callbacks queued in the outbox, and recovery of calls whose node died.
- ``voice.ports``: the Protocols the API uses to reach the engine (``CallPlacer``, ``CallControl``).
"""
