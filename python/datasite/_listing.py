"""What every collection on the client (client.jobs, client.requests) does alike: it reads as the list
of all items (len, iteration, index by position, Jupyter display) and as a look-up by id."""


def fetch_all_pages(transport, route, query=None, page_size=1000):
    """The items of every page of a paged listing (oldest first, as the server pages it).

    Pages are read until the server's ``total`` is reached, so that no item is dropped silently;
    a page that comes back empty ends the reading (items were deleted meanwhile).
    """
    items, page = [], 1
    while True:
        asked = dict(query or {})
        asked.update(page=page, page_size=page_size)
        data = transport.call(route, query=asked) or {}
        batch = data.get("items") or []
        items.extend(batch)
        total = data.get("total")
        if not batch or total is None or len(items) >= total:
            return items
        page += 1


class ListingMixin:
    """Needs ``get_all()`` (a list of the items) and ``get(id)``; made with the client it reads
    through."""

    def __init__(self, client):
        self._client = client

    def _transport(self):
        return self._client._transport

    def _unpaged(self, route):
        """The items of a listing the server sends whole: a list, or ``{"items": [...]}``."""
        items = self._transport().call(route) or []
        if isinstance(items, dict):
            items = items.get("items") or []
        return items

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


class TableList(list):
    """A list of objects with an ``id`` that renders as a table; index by position or by id.

    Subclasses set ``_noun`` ("job"), ``_title`` ("Jobs"), ``_columns`` and define ``_row(item)``.
    """

    _noun = "item"
    _title = "Items"
    _columns = ()

    def __getitem__(self, key):
        if isinstance(key, str):
            for item in self:
                if item.id == key:
                    return item
            raise KeyError("no {} with id {!r}".format(self._noun, key))
        result = super().__getitem__(key)
        return type(self)(result) if isinstance(key, slice) else result

    def _row(self, item):
        raise NotImplementedError

    def _table_rows(self):
        return [self._row(item) for item in self]

    def __repr__(self):
        from . import _display

        return _display.text_table(self._columns, self._table_rows())

    def _repr_html_(self):
        from . import _display

        return _display.html_list(self._title, self._columns, self._table_rows())
