"""``syft.service.job``."""
