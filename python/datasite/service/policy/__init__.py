"""``syft.service.policy``."""
