"""Output checks: a data owner's rules, per dataset, for the results of runs nobody reviews.

A run admitted under a grant (code approved for repeated use) is not reviewed. Before its requester
reads anything of it, its output must pass the rules of every dataset whose assets the code binds
(the strictest of each rule)::

    census = owner.datasets["census"]
    census.set_output_checks(sy.OutputChecks(min_cell_count=10, round_to=5, no_row_level=True))
    census.output_checks          # OutputChecks(...) or None
    census.set_output_checks(sy.OutputChecks())   # removes them

A count below ``min_cell_count`` is suppressed (``small_cells="suppress"``: JSON null, a missing CSV
cell) or holds the result (``"hold"``); counts are rounded to multiples of ``round_to``;
``no_row_level`` holds a result that copies rows of a private table, or has as many rows;
``max_result_bytes`` holds a larger result; a run that prints is held too. A held run's
``job.held_reason`` names the rule that held it, never a value; a data owner may release it.
"""

import numbers

from .errors import SyftSuccess

# The server's bounds (docs/API.md, "Output checks").
MIN_COUNT_OR_BASE = 2
MAX_RULE_VALUE = 1000000000
SMALL_CELLS = ("suppress", "hold")
FIELDS = ("min_cell_count", "small_cells", "round_to", "no_row_level", "max_result_bytes")


def _is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _check_int(name, value, low):
    if value is None:
        return None
    if not _is_int(value):
        raise ValueError("OutputChecks {} must be a whole number, got {!r}".format(name, value))
    if not low <= value <= MAX_RULE_VALUE:
        raise ValueError(
            "OutputChecks {} must be from {} to {}, got {}".format(
                name, low, MAX_RULE_VALUE, value
            )
        )
    return int(value)


class OutputChecks:
    """A dataset's rules for results nobody reviews (see the module's docstring).

    ``min_cell_count`` and ``round_to``: whole numbers from 2 to 1e9; ``small_cells``: "suppress"
    (the default) or "hold", what a count below ``min_cell_count`` does (only with it);
    ``no_row_level``: True or False; ``max_result_bytes``: from 1 to 1e9. None is no such rule;
    ``OutputChecks()`` has none, and setting it removes a dataset's rules.
    """

    def __init__(
        self,
        min_cell_count=None,
        small_cells="suppress",
        round_to=None,
        no_row_level=False,
        max_result_bytes=None,
    ):
        self.min_cell_count = _check_int("min_cell_count", min_cell_count, MIN_COUNT_OR_BASE)
        self.round_to = _check_int("round_to", round_to, MIN_COUNT_OR_BASE)
        self.max_result_bytes = _check_int("max_result_bytes", max_result_bytes, 1)
        if small_cells is None:
            small_cells = "suppress"
        if small_cells not in SMALL_CELLS:
            raise ValueError(
                "OutputChecks small_cells must be 'suppress' or 'hold', got {!r}".format(
                    small_cells
                )
            )
        if small_cells != "suppress" and self.min_cell_count is None:
            raise ValueError(
                "OutputChecks small_cells={!r} needs min_cell_count, e.g. "
                "sy.OutputChecks(min_cell_count=10, small_cells='hold')".format(small_cells)
            )
        self.small_cells = small_cells
        if not isinstance(no_row_level, bool):
            raise ValueError(
                "OutputChecks no_row_level must be True or False, got {!r}".format(no_row_level)
            )
        self.no_row_level = no_row_level

    @classmethod
    def of(cls, value):
        """``OutputChecks`` from one, from a dict of its fields, or from None (no rules)."""
        if value is None:
            return cls()
        if isinstance(value, OutputChecks):
            return value
        if isinstance(value, dict):
            unknown = sorted(set(value) - set(FIELDS))
            if unknown:
                raise ValueError(
                    "output checks have unknown field(s) {}: use {}".format(
                        ", ".join(unknown), ", ".join(FIELDS)
                    )
                )
            return cls(**{k: v for k, v in value.items() if v is not None})
        raise TypeError(
            "output checks are a sy.OutputChecks (e.g. sy.OutputChecks(min_cell_count=10)), "
            "got {!r}".format(value)
        )

    @property
    def empty(self):
        """True when there is no rule: setting it removes a dataset's rules."""
        return not self.to_wire()

    def to_wire(self):
        """The body of ``PUT .../output_checks``: only the rules that are set (``{}``: none)."""
        body = {}
        if self.min_cell_count is not None:
            body["min_cell_count"] = self.min_cell_count
            body["small_cells"] = self.small_cells
        if self.round_to is not None:
            body["round_to"] = self.round_to
        if self.no_row_level:
            body["no_row_level"] = True
        if self.max_result_bytes is not None:
            body["max_result_bytes"] = self.max_result_bytes
        return body

    def describe(self):
        """The rules in words, e.g. ``"counts below 10 suppressed, counts rounded to 5"``."""
        parts = []
        if self.min_cell_count is not None:
            parts.append(
                "counts below {} {}".format(
                    self.min_cell_count,
                    "suppressed" if self.small_cells == "suppress" else "held for review",
                )
            )
        if self.round_to is not None:
            parts.append("counts rounded to {}".format(self.round_to))
        if self.no_row_level:
            parts.append("no row-level results")
        if self.max_result_bytes is not None:
            parts.append("results of at most {} bytes".format(self.max_result_bytes))
        return ", ".join(parts) or "no rules"

    def __eq__(self, other):
        if isinstance(other, OutputChecks):
            return self.to_wire() == other.to_wire()
        return NotImplemented

    __hash__ = None

    def __repr__(self):
        return "OutputChecks({})".format(
            ", ".join("{}={!r}".format(k, v) for k, v in self.to_wire().items())
        )


def _from_document(document):
    """The ``rules`` of a server's output-checks document as ``OutputChecks``; None for none."""
    rules = (document or {}).get("rules")
    if not isinstance(rules, dict):
        return None
    checks = OutputChecks.of({k: rules.get(k) for k in FIELDS})
    return None if checks.empty else checks


def get_output_checks(client, dataset_id):
    """The rules of a dataset (by id or name), or None: ``GET .../output_checks``."""
    document = client._transport.call("dataset_output_checks_get", path_params={"id": dataset_id})
    return _from_document(document)


def set_output_checks(client, dataset_id, checks, dataset_name=None):
    """Sets a dataset's rules (data owners); ``OutputChecks()`` or None removes them."""
    checks = OutputChecks.of(checks)
    document = client._transport.call(
        "dataset_output_checks_set", path_params={"id": dataset_id}, body=checks.to_wire()
    )
    now = _from_document(document)
    name = (document or {}).get("dataset") or dataset_name or dataset_id
    if now is None:
        message = "Output checks of dataset '{}' removed.".format(name)
    else:
        message = "Output checks of dataset '{}' set: {}.".format(name, now.describe())
    return SyftSuccess(message, value=now)
