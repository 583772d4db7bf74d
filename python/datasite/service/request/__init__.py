"""``syft.service.request``."""
