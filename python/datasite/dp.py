"""Differential privacy: aggregates of a tabular asset's private data, released without review
under a budget the server keeps (docs/PRIVACY.md).

A data owner sets an asset's policy; its bounds and categories are public, never read from the
data::

    asset = owner.datasets["census"].assets["people"]
    asset.set_dp_policy(sy.DPPolicy(
        columns={"age": (0, 120), "income": (0.0, 250000.0), "sex": ["F", "M"],
                 "region": ["north", "south"], "city": None},   # None: keys only through
        epsilon=1.0, delta=1e-6,                                 # DP partition selection
        total_epsilon=10.0, privacy_unit="person_id", max_rows_per_unit=1))

A data scientist asks, and reads what is left::

    people = ds.datasets["census"].assets["people"]
    people.dp.count(epsilon=0.1)                       # DPResult: value, noise_std, ci95
    people.dp.mean("age", epsilon=0.2, where={"sex": "F"}, group_by="region").to_pandas()
    people.dp.quantile("income", q=[0.25, 0.5, 0.75], epsilon=0.3)
    people.dp.cost("mean", "age", epsilon=0.2)         # what it would cost, runs nothing
    people.dp.count(epsilon=0.1, mock=True)            # on the mock: free
    ds.dp.budget                                       # spent and left, per asset
"""

import numbers

# The server's bounds (src/dp/policy.cc).
MAX_EPSILON = 100.0
MAX_DELTA = 1e-3
QUERIES = ("count", "sum", "mean", "variance", "quantile")


def _is_number(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _column(name, spec):
    """A policy column from the short forms: (lower, upper) numbers (int when both are ints),
    a list of categories, None (a category column without listed keys), or the wire dict."""
    if isinstance(spec, dict):
        return dict(spec)
    if spec is None:
        return {"type": "category", "categories": None}
    if isinstance(spec, (list, set, frozenset)) and all(isinstance(v, str) for v in spec):
        return {"type": "category", "categories": list(spec)}
    if isinstance(spec, tuple) and len(spec) == 2 and all(_is_number(v) for v in spec):
        lower, upper = spec
        kind = "int" if all(isinstance(v, numbers.Integral) for v in spec) else "float"
        return {"type": kind, "lower": lower, "upper": upper}
    raise TypeError(
        "DPPolicy column {!r}: give (lower, upper) bounds, a list of categories, None, or "
        "{{'type': ...}}; got {!r}".format(name, spec)
    )


class DPPolicy:
    """A tabular asset's differential-privacy policy (see the module's docstring).

    ``columns``: the queryable columns, each ``(lower, upper)`` (clamping bounds, public),
    a list of public categories, or None. ``epsilon``/``delta``: what each data scientist may
    spend on the asset; ``total_epsilon``/``total_delta``: all of them together (default: the
    same as one). ``privacy_unit``: the column naming the person protected (None: each row);
    ``max_rows_per_unit``: the rows one person may add to a query. ``queries``: the kinds allowed
    (default all of count, sum, mean, variance, quantile).
    """

    def __init__(self, columns, epsilon, delta=1e-6, total_epsilon=None, total_delta=None,
                 privacy_unit=None, max_rows_per_unit=1, queries=None):
        if not isinstance(columns, dict) or not columns:
            raise ValueError("DPPolicy needs columns={name: bounds or categories, ...}")
        self.columns = {name: _column(name, spec) for name, spec in columns.items()}
        for label, value, top in (("epsilon", epsilon, MAX_EPSILON), ("delta", delta, MAX_DELTA)):
            if not _is_number(value) or not 0 <= value <= top or (label == "epsilon" and not value):
                raise ValueError("DPPolicy {} must be above 0 and at most {}, got {!r}".format(
                    label, top, value))
        self.epsilon, self.delta = float(epsilon), float(delta)
        self.total_epsilon = float(total_epsilon) if total_epsilon is not None else self.epsilon
        self.total_delta = float(total_delta) if total_delta is not None else self.delta
        self.privacy_unit = privacy_unit
        self.max_rows_per_unit = max_rows_per_unit
        self.queries = list(queries) if queries is not None else list(QUERIES)
        unknown = sorted(set(self.queries) - set(QUERIES))
        if unknown:
            raise ValueError("DPPolicy queries: unknown {} (use {})".format(
                ", ".join(unknown), ", ".join(QUERIES)))

    def to_wire(self):
        return {
            "privacy_unit": self.privacy_unit,
            "max_rows_per_unit": self.max_rows_per_unit,
            "columns": self.columns,
            "budget": {
                "per_scientist": {"epsilon": self.epsilon, "delta": self.delta},
                "total": {"epsilon": self.total_epsilon, "delta": self.total_delta},
            },
            "queries": self.queries,
        }

    @classmethod
    def from_wire(cls, doc):
        budget = doc.get("budget", {})
        each, total = budget.get("per_scientist", {}), budget.get("total", {})
        return cls(columns=doc.get("columns", {}), epsilon=each.get("epsilon"),
                   delta=each.get("delta", 0.0), total_epsilon=total.get("epsilon"),
                   total_delta=total.get("delta"), privacy_unit=doc.get("privacy_unit"),
                   max_rows_per_unit=doc.get("max_rows_per_unit", 1), queries=doc.get("queries"))

    def __repr__(self):
        return "DPPolicy(columns={}, epsilon={}, delta={}, total_epsilon={}, privacy_unit={!r})" \
            .format(sorted(self.columns), self.epsilon, self.delta, self.total_epsilon,
                    self.privacy_unit)


class DPResult:
    """A DP release: ``value`` (one number), or ``groups`` ({group: value}) for a group-by, each
    with its noise; ``estimates`` as the server sent them; ``budget``: what you have left."""

    def __init__(self, answer):
        self.raw = answer
        self.estimates = answer.get("estimates", [])
        self.epsilon = answer.get("epsilon")
        self.delta = answer.get("delta")
        self.mock = answer.get("mock", False)
        self.budget = answer.get("budget")

    @property
    def value(self):
        """The released number (the first, for several quantiles); None for a group-by."""
        if any("group" in e for e in self.estimates) or not self.estimates:
            return None
        if len(self.estimates) > 1:
            return [e["value"] for e in self.estimates]
        return self.estimates[0]["value"]

    @property
    def noise_std(self):
        return self.estimates[0].get("noise_std") if len(self.estimates) == 1 else None

    @property
    def ci95(self):
        return self.estimates[0].get("ci95") if len(self.estimates) == 1 else None

    @property
    def groups(self):
        return {e["group"]: e["value"] for e in self.estimates if "group" in e}

    def to_pandas(self):
        import pandas as pd

        return pd.DataFrame(self.estimates)

    def __float__(self):
        value = self.value
        if not _is_number(value):
            raise TypeError("this DP result has several values: read .groups or .estimates")
        return float(value)

    def __repr__(self):
        what = self.groups if self.groups else self.value
        return "DPResult({}{}, epsilon={})".format(what, " (mock)" if self.mock else "",
                                                   self.epsilon)


class AssetDP:
    """``asset.dp``: DP queries on one asset (see the module's docstring)."""

    def __init__(self, asset):
        self._asset = asset

    @property
    def _client(self):
        return self._asset._client

    def _body(self, kind, column, epsilon, delta, where, group_by, quantiles=None):
        body = {"query": kind, "epsilon": epsilon}
        if column is not None:
            body["column"] = column
        if delta is not None:
            body["delta"] = delta
        if where:
            body["where"] = where
        if group_by is not None:
            body["group_by"] = group_by
        if quantiles is not None:
            body["quantiles"] = list(quantiles) if isinstance(quantiles, (list, tuple)) \
                else [quantiles]
        return body

    def _ask(self, body, mock):
        self._asset._require_remote("dp")
        if mock:
            body = dict(body, mock=True)
        answer = self._client._transport.call("dp_query", {"id": self._asset.id}, body=body)
        return DPResult(answer)

    def count(self, epsilon, where=None, group_by=None, delta=None, mock=False):
        return self._ask(self._body("count", None, epsilon, delta, where, group_by), mock)

    def sum(self, column, epsilon, where=None, group_by=None, delta=None, mock=False):
        return self._ask(self._body("sum", column, epsilon, delta, where, group_by), mock)

    def mean(self, column, epsilon, where=None, group_by=None, delta=None, mock=False):
        return self._ask(self._body("mean", column, epsilon, delta, where, group_by), mock)

    def variance(self, column, epsilon, where=None, group_by=None, delta=None, mock=False):
        return self._ask(self._body("variance", column, epsilon, delta, where, group_by), mock)

    def quantile(self, column, epsilon, q=0.5, where=None, group_by=None, delta=None,
                 mock=False):
        return self._ask(self._body("quantile", column, epsilon, delta, where, group_by, q), mock)

    def median(self, column, epsilon, **kwargs):
        return self.quantile(column, epsilon, q=0.5, **kwargs)

    def cost(self, query, column=None, epsilon=None, where=None, group_by=None, delta=None,
             q=None):
        """What a query would cost and what you would have left; runs nothing."""
        self._asset._require_remote("dp.cost")
        body = self._body(query, column, epsilon, delta, where, group_by,
                          q if query == "quantile" else None)
        return self._client._transport.call("dp_cost", {"id": self._asset.id}, body=body)

    @property
    def policy(self):
        """The asset's DPPolicy; None when its data owner has set none."""
        from .errors import NotFoundError

        self._asset._require_remote("dp.policy")
        try:
            doc = self._client._transport.call("dp_policy_get", {"id": self._asset.id})
        except NotFoundError:
            return None
        return DPPolicy.from_wire(doc)

    @property
    def budget(self):
        """What you have spent and left on this asset (data owners: every scientist's)."""
        return self._client.dp.budget_of(self._asset.id)


class DPService:
    """``client.dp``: budgets across assets, and a data owner's changes to them."""

    def __init__(self, client):
        self._client = client

    def budget_of(self, asset_id=None):
        query = {"asset_id": asset_id} if asset_id else None
        return self._client._transport.call("dp_budget", query=query)["items"]

    @property
    def budget(self):
        """Your DP budgets, spent and left, one item per asset you queried (data owners: every
        scientist's, and all scientists' together)."""
        return self.budget_of()

    def raise_budget(self, asset, epsilon, user=None):
        """Raises a budget to ``epsilon`` in all (data owners; audited): ``user`` a data
        scientist (an id, or an object with ``.id``), or None for all scientists together."""
        return self._adjust(asset, user, {"epsilon": epsilon})

    def reset_budget(self, asset, user=None):
        """Forgets what was spent (data owners; audited)."""
        return self._adjust(asset, user, {"reset": True})

    def _adjust(self, asset, user, body):
        asset_id = getattr(asset, "id", asset)
        user_id = "*" if user is None else getattr(user, "id", user)
        return self._client._transport.call("dp_budget_adjust", {"id": asset_id},
                                            body=dict(body, user_id=user_id))
