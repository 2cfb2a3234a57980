"""The pure core: grants, tokens and errors. No HTTP, no SQL."""
