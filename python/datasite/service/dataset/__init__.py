"""``syft.service.dataset``."""
