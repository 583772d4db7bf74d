"""PySyft's ``syft.types`` import paths."""
