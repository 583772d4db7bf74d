"""What every collection on the client (client.jobs, client.requests) does alike: it reads as the list
of all items (len, iteration, index by position, Jupyter display) and as a look-up by id."""


class ListingMixin:
    """Needs ``get_all()`` (a list of the items) and ``get(id)``."""

    def __len__(self):
        return len(self.get_all())

    def __iter__(self):
        return iter(self.get_all())

    def __getitem__(self, key):
        if isinstance(key, str):
            return self.get(key)
        return self.get_all()[key]

    def __repr__(self):
        return repr(self.get_all())

    def _repr_html_(self):
        return self.get_all()._repr_html_()
