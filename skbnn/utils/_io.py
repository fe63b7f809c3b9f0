"""Save fitted estimators as arrays + JSON, and load them without running code.

The file is one ``.npz`` archive: every array of the estimator goes in as its
own entry, and the entry ``__skbnn__`` holds a JSON text describing the rest
(parameters, fitted attributes, which array is which). Loading reads it with
``numpy.load(allow_pickle=False)`` and ``json.loads``, and builds objects only
from classes registered with :func:`serializable`: nothing in the file can
make the loader import or call anything else.

Hand-written rather than a dependency's format because the dependencies that
store estimators (pickle, joblib, cloudpickle) run code from the file when
loading it; safetensors or HDF5 would hold the arrays but not the parameters
and classes. It is not a speed choice, so there is nothing to measure.
"""

import dataclasses
import json
import math
import zipfile
import zlib

import numpy as np

__all__ = ["load_estimator", "save_estimator", "serializable"]

FORMAT = "skbnn-estimator"
FORMAT_VERSION = 1
_META_KEY = "__skbnn__"

#: Classes that may appear in a saved file, by name.
_REGISTRY = {}


def serializable(cls):
    """Class decorator: allow instances of ``cls`` in saved files.

    Dataclasses (including ``flax.struct`` ones) are stored field by field;
    scikit-learn estimators (estimators and strategy objects) by
    ``get_params(deep=False)`` plus their fitted attributes.
    """
    name = cls.__name__
    if _REGISTRY.get(name, cls) is not cls:
        raise ValueError(f"Two serializable classes are named {name!r}.")
    _REGISTRY[name] = cls
    return cls


class _Encoder:
    def __init__(self):
        self.arrays = {}

    def array(self, value):
        value = np.asarray(value)
        meta = {}
        if value.dtype == object:
            if not all(isinstance(v, str) for v in value.ravel()):
                raise TypeError("only object arrays of str can be saved")
            value = value.astype(str)
            meta["object"] = True
        key = f"a{len(self.arrays)}"
        self.arrays[key] = value
        return {"__array__": key, **meta}

    def __call__(self, value, where="value"):
        if value is None or isinstance(value, (bool, str)):
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float):
            return value if math.isfinite(value) else {"__float__": repr(value)}
        if isinstance(value, np.random.RandomState):
            return {"__random_state__": self(value.get_state(), where)}
        if isinstance(value, (np.ndarray, np.generic)) or type(value).__module__.startswith("jax"):
            encoded = self.array(value)
            if np.ndim(value) == 0 and isinstance(value, np.generic):
                encoded["scalar"] = True
            return encoded
        if isinstance(value, tuple) and not hasattr(value, "_fields"):
            return {"__tuple__": [self(v, where) for v in value]}
        if isinstance(value, list):
            return [self(v, where) for v in value]
        if isinstance(value, dict):
            if not all(isinstance(k, str) for k in value):
                raise TypeError(f"cannot save {where}: dict keys must be str")
            return {"__dict__": {k: self(v, f"{where}[{k!r}]") for k, v in value.items()}}
        name = type(value).__name__
        if _REGISTRY.get(name) is type(value):
            if dataclasses.is_dataclass(value):
                fields = {f.name: self(getattr(value, f.name), f"{where}.{f.name}")
                          for f in dataclasses.fields(value)}
                return {"__dataclass__": name, "fields": fields}
            if hasattr(value, "get_params"):
                return self.estimator(value, where)
        raise TypeError(
            f"cannot save {where} of type {type(value).__module__}.{name}: "
            "skbnn saves arrays, numbers, strings, lists, tuples, dicts and skbnn objects."
        )

    def estimator(self, est, where="estimator"):
        params = est.get_params(deep=False)
        fitted = {k: v for k, v in vars(est).items() if k not in params and not k.startswith("__")}
        return {
            "__estimator__": type(est).__name__,
            "params": self(params, f"{where} parameters"),
            "fitted": self(fitted, f"{where} attributes"),
        }


class _Decoder:
    def __init__(self, arrays):
        self.arrays = arrays

    def __call__(self, value):
        if isinstance(value, list):
            return [self(v) for v in value]
        if not isinstance(value, dict):
            return value
        if "__array__" in value:
            arr = self.arrays[value["__array__"]]
            if value.get("object"):
                arr = arr.astype(object)
            return arr[()] if value.get("scalar") else arr
        if "__float__" in value:
            return float(value["__float__"])
        if "__tuple__" in value:
            return tuple(self(v) for v in value["__tuple__"])
        if "__dict__" in value:
            return {k: self(v) for k, v in value["__dict__"].items()}
        if "__random_state__" in value:
            rs = np.random.RandomState()
            rs.set_state(self(value["__random_state__"]))
            return rs
        if "__dataclass__" in value:
            cls = self._lookup(value["__dataclass__"])
            return cls(**{k: self(v) for k, v in value["fields"].items()})
        if "__estimator__" in value:
            cls = self._lookup(value["__estimator__"])
            obj = cls(**self(value["params"]))
            for k, v in self(value["fitted"]).items():
                setattr(obj, k, v)
            return obj
        raise ValueError(f"Unrecognised entry in a saved skbnn file: {sorted(value)}")

    @staticmethod
    def _lookup(name):
        try:
            return _REGISTRY[name]
        except KeyError:
            raise ValueError(
                f"The file names a class {name!r} that this version of skbnn does not know."
            ) from None


def save_estimator(estimator, path):
    """Write ``estimator`` (parameters and fitted state) to ``path`` (a ``.npz`` file)."""
    from .. import __version__

    encoder = _Encoder()
    body = encoder.estimator(estimator, type(estimator).__name__)
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION,
            "skbnn_version": __version__, "estimator": body}
    text = json.dumps(meta, allow_nan=False)
    with open(path, "wb") as f:
        np.savez(f, **{_META_KEY: np.array(text)}, **encoder.arrays)


def load_estimator(path):
    """Read an estimator written by ``save``; runs no code from the file.

    A file that is not skbnn's, is damaged (truncated, an array missing), comes
    from a newer format, or holds arrays of shapes its model does not have is
    refused with a ``ValueError`` that says which.
    """
    try:
        with np.load(path, allow_pickle=False) as archive:
            if _META_KEY not in archive.files:
                raise ValueError(f"{path!s} is not a file saved by skbnn.")
            meta = json.loads(str(archive[_META_KEY][()]))
            arrays = {k: archive[k] for k in archive.files if k != _META_KEY}
    except (zipfile.BadZipFile, EOFError, json.JSONDecodeError, zlib.error) as err:
        raise ValueError(f"{path!s} is damaged or truncated: {err}") from err
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ValueError(f"{path!s} is not a file saved by skbnn.")
    if meta.get("format_version", 0) > FORMAT_VERSION:
        raise ValueError(
            f"{path!s} was saved by skbnn {meta.get('skbnn_version')} in a newer format "
            f"(version {meta['format_version']}); upgrade skbnn to load it."
        )
    try:
        estimator = _Decoder(arrays)(meta["estimator"])
    except KeyError as err:
        raise ValueError(f"{path!s} is damaged: it lacks the entry {err}.") from None
    check = getattr(estimator, "_check_restored", None)
    if check is not None:
        try:
            check()
        except ValueError as err:
            raise ValueError(f"{path!s} is damaged: {err}") from None
    return estimator
