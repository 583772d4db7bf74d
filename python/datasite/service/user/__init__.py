"""``syft.service.user``."""
