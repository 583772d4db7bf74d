"""``datasite.client.api`` (PySyft's ``syft.client.api``): registered under that name by the
package, because ``datasite.client`` is a module, not a package."""

from ._api import APIEndpoint, APIModule, SyftAPI, UID


class ServerIdentity:
    """Which server an object belongs to: name, id and verify key (PySyft's ``ServerIdentity``)."""

    def __init__(self, server_name, server_id, verify_key):
        self.server_name = server_name
        self.server_id = server_id
        self.verify_key = verify_key

    @classmethod
    def from_api(cls, api):
        metadata = api._client.metadata
        return cls(metadata.get("name"), metadata.get("id"), metadata.get("verify_key"))

    def _key(self):
        return (self.server_name, self.server_id, self.verify_key)

    def __eq__(self, other):
        return isinstance(other, ServerIdentity) and self._key() == other._key()

    def __hash__(self):
        return hash(self._key())

    def __repr__(self):
        return "ServerIdentity <name={}, id={}>".format(self.server_name, self.server_id)


__all__ = ["APIEndpoint", "APIModule", "SyftAPI", "ServerIdentity", "UID"]
