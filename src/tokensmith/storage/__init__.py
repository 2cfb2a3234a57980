"""Storage: narrow protocols (:mod:`.protocols`) and their implementations."""
