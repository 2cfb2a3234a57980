"""tokensmith: an OAuth 2.0 authorization server and token client.

The server is built by :func:`tokensmith.web.app.create_app`; the client library
is :mod:`tokensmith.client`; the resource-server guard is :mod:`tokensmith.resource`.
Importing this package imports none of them.
"""

__all__ = ["__version__"]

__version__ = "0.1.0"
