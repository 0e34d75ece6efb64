"""Voice: calls, their records and status callbacks, recordings, and the SIP/media engine.

- ``voice.engine``: ``VoiceEngine``, the background service that owns the SIP stack, RTP ports,
  text to speech, the audio cache, the registrar and the live legs (and renews their leases).
- ``voice.leg``: ``Leg``, one SIP dialog + one RTP endpoint + its call SID, with a small state
  machine; what every call feature is built from.
- ``voice.session``: ``CallSession``, rcml's ``VoiceCall`` over a leg (answer, say, play, digits,
  record, dial through the engine's dialer).
- ``voice.inbound``: a new INVITE: admission (trunks, digest), destination (numbers, Clients), the
  call record from ringing to its end, the application run.
- ``voice.audio``: ``<Play>`` URLs fetched through the guard and revalidated; ``<Say>`` via TTS.
- ``voice.recording``: ``<Record>`` files and rows, recording status callbacks.
- ``voice.registrar``: the SIP registrar's credentials and bindings in the database.
- ``voice.store``: the call and recording records (written in the caller's transaction), list
  filters, status callbacks queued in the outbox, recovery of calls whose node died, the SIP
  registrar's bindings, and the SIP trunks (configured and from the Gateways API).
- ``voice.recovery``: the background sweep that closes calls a dead node left live.
- ``voice.ports``: the Protocols the API uses to reach the engine (``CallPlacer``, ``CallControl``).
"""
