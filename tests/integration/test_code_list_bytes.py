"""Regression: one ``GET /api/v1/code?page_size=1000`` read every source of its page at once.

A page was bounded by its count only: a data scientist with 1000 sources of 1 MiB (within their
quota) made one GET read 1 GiB from the database under the store's lock and hold about three times
that while rendering it; four at once held ~12 GiB. Now a page carries at most 4 Mi characters of
sources and custom policies; past them a row comes without (``source`` null, ``source_omitted``
true) and is read by id, which the Python client does for the caller.
"""

from helpers import unique

CHARS = 900_000  # of one source: four fit in a page's 4 Mi characters, the fifth does not
COUNT = 6


def big_source(i):
    name = "f{}".format(i)
    pad = ("#" + "x" * 98 + "\n") * (CHARS // 100)
    return name, "def {}():\n    return {}\n{}".format(name, i, pad)


def test_a_page_stops_reading_sources_at_its_budget(api, actors):
    token = actors["scientist"].token
    sources = {}
    prefix = unique("big")
    for i in range(COUNT):
        name, src = big_source(i)
        name = prefix + name
        src = src.replace("def f{}(".format(i), "def {}(".format(name), 1)
        resp = api.post("/api/v1/code", {"name": name, "source": src}, token=token)
        assert resp.status == 201, resp
        sources[resp.json["id"]] = src

    resp = api.get("/api/v1/code?page_size=1000", token=token)
    assert resp.status == 200, resp
    mine = [item for item in resp.json["items"] if item["id"] in sources]
    assert len(mine) == COUNT
    whole = [item for item in mine if not item.get("source_omitted")]
    left_out = [item for item in mine if item.get("source_omitted")]
    # The page reads 4 Mi characters of sources at most (the scientist's earlier code is small).
    assert len(whole) == 4, [len(item["source"] or "") for item in mine]
    assert len(left_out) == COUNT - 4
    assert sum(len(item["source"]) for item in whole) <= 4 << 20
    for item in whole:
        assert item["source"] == sources[item["id"]]
    for item in left_out:
        assert item["source"] is None and item["policy_code"] is None
        assert item["code_hash"] and item["name"].startswith(prefix)
        one = api.get("/api/v1/code/" + item["id"], token=token)
        assert one.status == 200, one
        assert one.json["source"] == sources[item["id"]]
        assert "source_omitted" not in one.json

    # The client reads what a page left out: every version whole, in order.
    listed = [c for c in actors["scientist"].client.code.get_all() if c.id in sources]
    assert [c.id for c in listed] == [item["id"] for item in mine]
    assert all(c.source == sources[c.id] for c in listed)
