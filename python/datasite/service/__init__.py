"""PySyft's import paths (``syft.service...``), resolving to this client's objects."""
