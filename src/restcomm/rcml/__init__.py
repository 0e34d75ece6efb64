"""RCML/TwiML: one interpreter for every channel.

* ``parser.py``: hostile-input-safe parsing of a document into verbs, through a channel's table.
* ``verbs/``: one module per verb (dataclass, attribute parsing with Restcomm's defaults and
  warnings, ``async run(ctx)``); nouns of ``Dial`` and ``Gather`` go through their parent's table.
* ``runtime.py``: what a verb sees (``Context``), what it answers (``Fetch``, ``FINISH``, ``Stop``),
  the ``Channel`` Protocol and the services a channel lends (``ReplySender``, ``EmailQueue``,
  ``Notifier``, ``Budget``).
* ``interpreter.py``: the one loop (entry, fallback, documents, limits, notifications).
* ``channels.py``: the SMS profile; ``voice.py``: the voice profile and the per-call driver;
  ``call.py``: the ``VoiceCall`` Protocol that voice/ implements.
* ``errors.py``: notification codes; ``urls.py``: URL resolution; ``notifications.py``: the
  store-backed ``Notifier``.

This package imports webhooks/ and leaves only: messaging/ and voice/ implement its Protocols.
"""
