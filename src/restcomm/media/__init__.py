"""Media layer of the voice platform: RTP/RTCP, G.711, RFC 4733 DTMF, SDP, pacing, audio files, TTS.

Every module here is pure (bytes in, bytes or values out) except `endpoint`, the one asyncio UDP
endpoint per call leg. Nothing here knows about accounts, RCML or the database.
"""
