"""The arrays + JSON save format: exact, and it runs no code on load."""

import json
import pickle
import warnings

import numpy as np
import pytest

import skbnn
from skbnn import BayesianMLPClassifier


def _fitted():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(40, 3))
    y = (X[:, 0] > 0).astype(int)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # 3 epochs do not converge, on purpose
        clf = BayesianMLPClassifier((4,), inference="map", max_iter=3, random_state=0).fit(X, y)
    return clf, X


def test_file_is_a_plain_npz_with_json_metadata(tmp_path):
    clf, _ = _fitted()
    clf.save(tmp_path / "m.npz")
    with np.load(tmp_path / "m.npz", allow_pickle=False) as archive:
        meta = json.loads(str(archive["__skbnn__"][()]))
        assert all(archive[k].dtype != object for k in archive.files)
    assert meta["format"] == "skbnn-estimator"
    assert meta["estimator"]["__estimator__"] == "BayesianMLPClassifier"


def test_pickled_payload_in_the_file_is_never_unpickled(tmp_path):
    clf, _ = _fitted()
    clf.save(tmp_path / "m.npz")
    with np.load(tmp_path / "m.npz", allow_pickle=False) as archive:
        entries = {k: archive[k] for k in archive.files}
    # replace one array with an object array: loading it would need pickle
    key = next(k for k in entries if k != "__skbnn__")
    entries[key] = np.array([pickle.dumps("boom")], dtype=object)
    np.savez(tmp_path / "evil.npz", **entries)
    with pytest.raises(ValueError, match="allow_pickle=False"):
        skbnn.load(tmp_path / "evil.npz")


def test_unknown_class_names_are_refused(tmp_path):
    clf, _ = _fitted()
    clf.save(tmp_path / "m.npz")
    with np.load(tmp_path / "m.npz", allow_pickle=False) as archive:
        entries = {k: archive[k] for k in archive.files}
    meta = json.loads(str(entries["__skbnn__"][()]))
    meta["estimator"]["__estimator__"] = "os.system"
    entries["__skbnn__"] = np.array(json.dumps(meta))
    np.savez(tmp_path / "odd.npz", **entries)
    with pytest.raises(ValueError, match="does not know"):
        skbnn.load(tmp_path / "odd.npz")


def test_other_files_are_refused(tmp_path):
    np.savez(tmp_path / "x.npz", a=np.zeros(3))
    with pytest.raises(ValueError, match="not a file saved by skbnn"):
        skbnn.load(tmp_path / "x.npz")


def test_unsavable_attributes_are_named(tmp_path):
    clf, _ = _fitted()
    clf.callback_ = lambda: None
    with pytest.raises(TypeError, match="callback_"):
        clf.save(tmp_path / "m.npz")


def _entries(tmp_path):
    clf, X = _fitted()
    clf.save(tmp_path / "m.npz")
    with np.load(tmp_path / "m.npz", allow_pickle=False) as archive:
        entries = {k: archive[k] for k in archive.files}
    return clf, X, entries, json.loads(str(entries["__skbnn__"][()]))


def test_a_newer_format_version_is_refused(tmp_path):
    _, _, entries, meta = _entries(tmp_path)
    meta["format_version"] += 1
    entries["__skbnn__"] = np.array(json.dumps(meta))
    np.savez(tmp_path / "new.npz", **entries)
    with pytest.raises(ValueError, match="newer format"):
        skbnn.load(tmp_path / "new.npz")


def test_a_truncated_file_is_refused_by_name(tmp_path):
    _entries(tmp_path)
    data = (tmp_path / "m.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="damaged or truncated"):
        skbnn.load(tmp_path / "cut.npz")


def test_a_missing_array_is_refused_by_name(tmp_path):
    _, _, entries, _ = _entries(tmp_path)
    del entries[next(k for k in sorted(entries) if k != "__skbnn__")]
    np.savez(tmp_path / "lacking.npz", **entries)
    with pytest.raises(ValueError, match="damaged: it lacks"):
        skbnn.load(tmp_path / "lacking.npz")


def test_arrays_of_the_wrong_shape_are_refused(tmp_path):
    clf, X, entries, _ = _entries(tmp_path)
    kernel = clf.posterior_.draws["network"]["dense_0"]["kernel"]
    # the stored draw of the first kernel, one input row short
    key = next(k for k in entries if k != "__skbnn__" and entries[k].shape == kernel.shape)
    entries[key] = entries[key][:, :, :-1]
    np.savez(tmp_path / "reshaped.npz", **entries)
    with pytest.raises(ValueError, match="damaged: a parameter array has shape"):
        skbnn.load(tmp_path / "reshaped.npz")
    # the intact file loads and predicts the same numbers
    np.testing.assert_array_equal(skbnn.load(tmp_path / "m.npz").predict_proba(X),
                                  clf.predict_proba(X))
