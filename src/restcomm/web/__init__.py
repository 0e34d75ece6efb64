"""The HTTP side of the server, one concern per module (``restcomm.app`` assembles them):

* ``edge``       the ASGI layer in front of everything: .json/.xml suffixes, request ids, latency metrics
* ``router``     the URL router (a trie over path segments; 404/405)
* ``endpoints``  an API operation as an ASGI endpoint: auth, validation, body limits, error answers
* ``errors``     error documents: 404/405, server errors (500, 503 for an unavailable database)
* ``pages``      the public pages: OpenAPI document, error-code pages
* ``probes``     /health and /ready
* ``metrics``    /metrics and the collectors that read the queue and the carriers at scrape time
* ``bootstrap``  first start: the schema, the organization and the administrator account
* ``lifespan``   startup and shutdown: the database, then the background services (restcomm.background)
* ``peers``      with ``--workers N``: the workers ask each other, so /metrics, /ready and the Carriers
                 API answer for the whole server
"""
