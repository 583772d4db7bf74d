"""``sy.ActionObject``: a value behind a pointer-like face, as PySyft's calls answer.

Calling decorated code here (``func(data=asset)``) answers an ``ActionObject`` around the value the
function returned on the mock: ``.get()`` (or ``.syft_action_data``) is the value itself, and the
object stays usable as the value: attributes, indexing, iteration, arithmetic, comparisons and
display go to it. A result of the server (``client.code.f(...)``) is a ``ResultPointer``, which is
an ``ActionObject`` too (``isinstance`` holds).
"""

import abc
import operator


class _Empty:
    """The value of ``ActionObject.empty()``: none yet."""

    def __repr__(self):
        return "<empty>"

    def __bool__(self):
        return False


_EMPTY = _Empty()


def is_empty(obj):
    """Whether ``obj`` is PySyft's ``ActionObject.empty()`` placeholder."""
    return isinstance(obj, ActionObject) and obj.is_empty


class ActionObject(abc.ABC):
    """A value with PySyft's pointer methods (``get``, ``wait``, ``syft_action_data``)."""

    __slots__ = ("_value",)

    def __init__(self, value):
        object.__setattr__(self, "_value", value)

    @classmethod
    def from_obj(cls, syft_action_data, **_ignored):
        """PySyft's constructor: ``sy.ActionObject.from_obj(value)``."""
        return cls(syft_action_data)

    @property
    def syft_action_data(self):
        return self._value

    @classmethod
    def empty(cls, *_args, **_kwargs):
        """PySyft's placeholder with no value: ``sy.Asset(mock=sy.ActionObject.empty())`` is an
        asset without a mock (as ``asset.no_mock()``); as an asset's data, a placeholder a
        low-side server accepts (it holds mocks only) and a high-side one refuses.
        """
        return cls(_EMPTY)

    @property
    def is_empty(self):
        return self._value is _EMPTY

    def get(self, *args, **kwargs):
        """The value."""
        return self._value

    def wait(self, *args, **kwargs):
        return self

    def send(self, client):
        raise NotImplementedError(
            "datasite keeps no free-standing objects on the server: upload data as an asset of a "
            "dataset (client.upload_dataset) and bind it to code with sy.ExactMatch(...)"
        )

    def __getattr__(self, name):
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        return getattr(object.__getattribute__(self, "_value"), name)

    def __setattr__(self, name, value):
        setattr(self._value, name, value)

    def __dir__(self):
        return sorted(set(dir(self._value)) | {"get", "wait", "syft_action_data"})

    def __repr__(self):
        return repr(self._value)

    def __str__(self):
        return str(self._value)

    def _repr_html_(self):
        html = getattr(self._value, "_repr_html_", None)
        return html() if callable(html) else None

    def _repr_markdown_(self):
        markdown = getattr(self._value, "_repr_markdown_", None)
        return markdown() if callable(markdown) else None

    def __bool__(self):
        return bool(self._value)

    def __len__(self):
        return len(self._value)

    def __iter__(self):
        return iter(self._value)

    def __contains__(self, item):
        return item in self._value

    def __getitem__(self, key):
        return self._value[key]

    def __call__(self, *args, **kwargs):
        return self._value(*args, **kwargs)

    def __hash__(self):
        return hash(self._value)

    def __float__(self):
        return float(self._value)

    def __int__(self):
        return int(self._value)

    def __index__(self):
        return operator.index(self._value)

    def __array__(self, *args, **kwargs):
        import numpy

        return numpy.asarray(self._value, *args, **kwargs)


def _unwrap(value):
    return value._value if isinstance(value, ActionObject) else value


def _forward(op):
    def method(self, *others):
        return op(self._value, *(_unwrap(o) for o in others))

    return method


def _reflected(op):
    def method(self, other):
        return op(_unwrap(other), self._value)

    return method


for _name, _op in {
    "eq": operator.eq, "ne": operator.ne, "lt": operator.lt, "le": operator.le,
    "gt": operator.gt, "ge": operator.ge, "add": operator.add, "sub": operator.sub,
    "mul": operator.mul, "truediv": operator.truediv, "floordiv": operator.floordiv,
    "mod": operator.mod, "pow": operator.pow, "matmul": operator.matmul,
    "and": operator.and_, "or": operator.or_, "xor": operator.xor,
    "neg": operator.neg, "pos": operator.pos, "abs": operator.abs, "invert": operator.invert,
    "round": round,
}.items():
    setattr(ActionObject, "__{}__".format(_name), _forward(_op))
for _name, _op in {
    "radd": operator.add, "rsub": operator.sub, "rmul": operator.mul,
    "rtruediv": operator.truediv, "rfloordiv": operator.floordiv, "rmod": operator.mod,
    "rpow": operator.pow, "rmatmul": operator.matmul, "rand": operator.and_,
    "ror": operator.or_, "rxor": operator.xor,
}.items():
    setattr(ActionObject, "__{}__".format(_name), _reflected(_op))
