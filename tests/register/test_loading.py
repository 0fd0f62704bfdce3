"""Loading verifies the bytes against the registry before unpickling anything."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from loopml.artifacts._cas import MAGIC
from loopml.kernel.exceptions import IntegrityError, RegistryError
from loopml.register import clear_model_cache, load_model, register_model
from loopml.register import _loading


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    clear_model_cache()


class _Exploit:
    """Unpickling this writes a marker file: proof that untrusted bytes were executed."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (Path.write_text, (self.marker, "pwned"))


def _object_file(ws, digest: str) -> Path:  # type: ignore[no-untyped-def]
    return Path(ws.settings.resolved_artifacts_url) / "objects" / digest[:2] / digest[2:]


def test_tampered_bytes_raise_before_unpickling(sqlite_workspace, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    rec = register_model(sqlite_workspace, "churn", {"w": 1}, flavor="custom")
    path = _object_file(sqlite_workspace, rec.artifact_digest)
    marker = tmp_path / "marker"
    evil = pickle.dumps(_Exploit(marker))
    # A well-formed envelope around a malicious payload: only the hash check stops it.
    header = path.read_bytes()[len(MAGIC) + 4 :]
    n = int.from_bytes(path.read_bytes()[len(MAGIC) : len(MAGIC) + 4], "big")
    path.write_bytes(MAGIC + n.to_bytes(4, "big") + header[:n] + evil)
    with pytest.raises(IntegrityError, match=r"model churn/1: artifact .* is corrupt.*refusing to load it"):
        load_model(sqlite_workspace, "churn/1")
    assert not marker.exists()


def test_garbage_bytes_raise_integrity_error(sqlite_workspace) -> None:  # type: ignore[no-untyped-def]
    rec = register_model(sqlite_workspace, "churn", {"w": 1}, flavor="custom")
    _object_file(sqlite_workspace, rec.artifact_digest).write_bytes(b"\x00garbage" * 10)
    with pytest.raises(IntegrityError, match="model churn/1"):
        load_model(sqlite_workspace, "churn/1")


def test_a_record_whose_digest_differs_from_the_bytes_is_refused(sqlite_workspace, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Even if the store handed back other bytes, the record's digest is checked again."""
    rec = register_model(sqlite_workspace, "churn", {"w": 1}, flavor="custom")

    class _Lying:
        def __init__(self, real) -> None:  # type: ignore[no-untyped-def]
            self.real = real

        def read(self, digest):  # type: ignore[no-untyped-def]
            _, info = self.real.read(digest)
            return b"other bytes", info

    monkeypatch.setitem(sqlite_workspace.__dict__, "artifacts", _Lying(sqlite_workspace.artifacts))
    with pytest.raises(IntegrityError, match=r"model churn/1: artifact bytes hash to .*the registry records"):
        load_model(sqlite_workspace, rec)


def test_a_missing_artifact_is_a_registry_error(sqlite_workspace) -> None:  # type: ignore[no-untyped-def]
    rec = register_model(sqlite_workspace, "churn", {"w": 1}, flavor="custom")
    _object_file(sqlite_workspace, rec.artifact_digest).unlink()
    with pytest.raises(RegistryError, match=r"model churn/1: its artifact .* is missing"):
        load_model(sqlite_workspace, "churn/1")


def test_loaded_models_are_cached_per_digest(sqlite_workspace) -> None:  # type: ignore[no-untyped-def]
    register_model(sqlite_workspace, "churn", {"w": 1}, flavor="custom")
    register_model(sqlite_workspace, "churn", {"w": 1}, flavor="custom")  # same bytes, new version
    a = load_model(sqlite_workspace, "churn/1")
    b = load_model(sqlite_workspace, "churn/2")
    assert a.estimator is b.estimator
    assert (a.version, b.version) == (1, 2)
    for i in range(_loading.CACHE_SIZE + 2):
        register_model(sqlite_workspace, "other", {"w": i}, flavor="custom")
        load_model(sqlite_workspace, "other")
    assert len(_loading._cache) == _loading.CACHE_SIZE


def test_lambdas_inside_sklearn_models_fall_back_to_cloudpickle(sqlite_workspace) -> None:  # type: ignore[no-untyped-def]
    from sklearn.preprocessing import FunctionTransformer

    model = FunctionTransformer(lambda x: x * 2)
    register_model(sqlite_workspace, "double", model)
    loaded = load_model(sqlite_workspace, "double")
    assert loaded.estimator.func(3) == 6
    assert sqlite_workspace.artifacts.info(loaded.record.artifact_digest).meta["serializer"] == "cloudpickle"


def test_an_unloadable_model_is_a_registry_error(sqlite_workspace, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    register_model(sqlite_workspace, "churn", {"w": 1}, flavor="custom")
    monkeypatch.setattr(pickle, "loads", lambda data: (_ for _ in ()).throw(ModuleNotFoundError("No module named 'xgb'")))
    with pytest.raises(RegistryError, match=r"model churn/1 could not be loaded: ModuleNotFoundError: No module named 'xgb'"):
        load_model(sqlite_workspace, "churn/1")
