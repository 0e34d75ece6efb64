"""SIP signalling (RFC 3261, 3581, 7616): our own code, sans-I/O core plus a thin asyncio adapter.

Modules, bottom up:

* :mod:`.message` - codec (parse/serialize, structured header views, TCP stream framing);
* :mod:`.transaction` - client/server transactions and every RFC 3261 timer, fed ``now``;
* :mod:`.dialog` - dialog state and in-dialog request construction;
* :mod:`.auth` - digest (server: stateless expiring nonces, replay check; client: answers);
* :mod:`.registrar` - REGISTER processing against storage Protocols, failure throttle;
* :mod:`.transport` - asyncio UDP and TCP on one port;
* :mod:`.ua` - ``SipStack``, ``IncomingCall``, ``OutgoingCall``: what voice/ uses.

Why not a library: the trials (dependency-trials.md §5.4) found aiosipua sends client requests once
over UDP (no Timer A/E), fires ``on_invite`` twice for a retransmitted INVITE, and has no server-side
digest or registrar; sipua pins aiortc; sipmessage is only a parser. Those are exactly the parts a
server must get right, so they are written here as a state machine tested with a fake clock, and
checked against SIPp over real sockets. This package imports nothing else from restcomm.
"""
