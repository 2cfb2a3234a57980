"""The HTTP layer: Starlette-level ASGI on top of the core."""
