"""The platform twin: an emulator of the isolated Genesys / CXone DR environment.

Parts: ``topology`` (YAML -> frozen dataclasses), ``model`` (sans-I/O routing model,
the ``CallRouter``), ``sip`` (UDP SIP side), ``api`` (REST, WSGI), ``auth`` (OAuth
client credentials), ``events`` (SSE), ``app.Twin`` (all of it on one gevent hub) and
``cli`` (``ccharness emulator``). Contracts: docs/CONTRACTS.md sections 1-5.
"""
