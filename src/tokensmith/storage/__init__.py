"""Storage: implementations of the core's ports (:mod:`tokensmith.core.ports`)."""
