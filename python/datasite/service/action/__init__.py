"""``syft.service.action``."""
