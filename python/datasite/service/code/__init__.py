"""``syft.service.code``."""
