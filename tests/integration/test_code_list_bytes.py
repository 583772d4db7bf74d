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


def submit_big_sources(api, token, prefix):
    """COUNT functions of CHARS characters each, named after `prefix`: {code id: source}."""
    sources = {}
    for i in range(COUNT):
        name, src = big_source(i)
        src = src.replace("def {}(".format(name), "def {}(".format(prefix + name), 1)
        resp = api.post("/api/v1/code", {"name": prefix + name, "source": src}, token=token)
        assert resp.status == 201, resp
        sources[resp.json["id"]] = src
    return sources


def test_a_page_stops_reading_sources_at_its_budget(api, actors):
    token = actors["scientist"].token
    prefix = unique("big")
    sources = submit_big_sources(api, token, prefix)

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


def test_inputs_count_in_the_page_budget(api, actors):
    """Cold attack: rows with a tiny source and ~900 KB of literal inputs each made a 40 MB page
    (inputs were neither counted nor left out)."""
    token = actors["scientist"].token
    prefix = unique("inp")
    ids = []
    for i in range(COUNT):
        name = "{}g{}".format(prefix, i)
        src = "def {}(x):\n    return {}\n".format(name, i)
        inputs = {"x": {"value": [0] * 300_000}}  # ~900 KB as sent, ~600 KB stored
        resp = api.post("/api/v1/code", {"name": name, "source": src, "inputs": inputs}, token=token)
        assert resp.status == 201, resp
        ids.append(resp.json["id"])
    resp = api.get("/api/v1/code?page_size=1000&name=" + prefix + "g5", token=token)
    assert resp.status == 200 and resp.json["items"][0]["inputs"] is not None
    page = api.get("/api/v1/code?page_size=1000", token=token)
    assert page.status == 200, page
    mine = [item for item in page.json["items"] if item["id"] in ids]
    assert len(page.raw) < 6 * CHARS, len(page.raw)
    left_out = [item for item in mine if item.get("source_omitted")]
    assert left_out, "every row's inputs came whole"
    for item in left_out:
        assert item["inputs"] is None and item["source"] is None
        one = api.get("/api/v1/code/" + item["id"], token=token)
        assert len(one.json["inputs"]["x"]["value"]) == 300_000


def test_the_requests_page_carries_code_up_to_the_budget(api, actors):
    """Cold attack: GET /api/v1/requests embedded every request's whole code (41 MB for 40 rows
    of 1 MB sources), past the code listing's budget."""
    token = actors["scientist"].token
    sources = submit_big_sources(api, token, unique("req"))
    for code_id in sources:
        made = api.post("/api/v1/requests", {"code_id": code_id}, token=token)
        assert made.status == 201, made
    page = api.get("/api/v1/requests?page_size=1000", token=token)
    assert page.status == 200, page
    mine = [item for item in page.json["items"] if item["code"]["id"] in sources]
    assert len(mine) == COUNT
    left_out = [item for item in mine if item["code"].get("source_omitted")]
    assert len(left_out) >= COUNT - 4, [bool(i["code"].get("source_omitted")) for i in mine]
    assert len(page.raw) < 5 * CHARS, len(page.raw)
    for item in left_out:
        assert item["code"]["source"] is None and item["code"]["inputs"] is None
    # The client reads the code a page left out.
    listed = [r for r in actors["scientist"].client.requests.get_all()
              if r.code is not None and r.code.id in sources]
    assert len(listed) == COUNT
    assert all(r.code.source == sources[r.code.id] for r in listed)
