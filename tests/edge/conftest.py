"""The live server and browser of tests/live, for edge tests that need a real client."""

from tests.live.conftest import asgi_server, browser  # noqa: F401  (fixtures)
