"""Cache policies: composition with ``+`` and what each one puts in the key."""

from __future__ import annotations

import platform

from loopml.pipeline import (
    DEFAULT,
    ENV,
    INPUTS,
    NONE,
    PARAMS,
    SOURCE,
    CacheContext,
    CompoundPolicy,
    Env,
    canonical_json,
    step,
)


@step
def fit(train: list[int], *, alpha: float = 1.0) -> float:
    return sum(train) * alpha


def ctx(digests: dict[str, str] | None = None, params: dict[str, object] | None = None) -> CacheContext:
    return CacheContext(fit, digests if digests is not None else {"train": "a" * 64}, params or {"alpha": 1.0})


def test_policies_compose_with_plus_and_none_is_the_identity() -> None:
    assert DEFAULT == INPUTS + SOURCE + PARAMS
    assert isinstance(DEFAULT, CompoundPolicy)
    assert repr(DEFAULT) == "INPUTS + SOURCE + PARAMS"
    assert INPUTS + NONE == INPUTS and NONE + INPUTS == INPUTS
    assert INPUTS + INPUTS == INPUTS
    assert NONE + NONE == NONE
    assert repr(DEFAULT + ENV) == "INPUTS + SOURCE + PARAMS + ENV"


def test_none_gives_no_key() -> None:
    assert NONE.compute_key(ctx()) is None


def test_key_is_sha256_hex_and_deterministic() -> None:
    key = DEFAULT.compute_key(ctx())
    assert key is not None and len(key) == 64 and int(key, 16) >= 0
    assert DEFAULT.compute_key(ctx()) == key
    # param order does not matter, values do
    assert DEFAULT.compute_key(ctx(params={"alpha": 1.0})) == key
    assert DEFAULT.compute_key(ctx(params={"alpha": 2.0})) != key


def test_each_policy_sees_only_its_part() -> None:
    base = ctx()
    other_inputs = ctx(digests={"train": "b" * 64})
    other_params = ctx(params={"alpha": 3.0})
    assert INPUTS.compute_key(base) != INPUTS.compute_key(other_inputs)
    assert INPUTS.compute_key(base) == INPUTS.compute_key(other_params)
    assert PARAMS.compute_key(base) != PARAMS.compute_key(other_params)
    assert PARAMS.compute_key(base) == PARAMS.compute_key(other_inputs)
    assert SOURCE.compute_key(base) == SOURCE.compute_key(other_inputs) == SOURCE.compute_key(other_params)


def test_env_adds_python_and_package_versions() -> None:
    base = ctx()
    assert (DEFAULT + ENV).compute_key(base) != DEFAULT.compute_key(base)
    parts = Env(packages=("scikit-learn", "no-such-dist-xyz"))._components(base)
    (env,) = parts.values()
    assert env["python"] == platform.python_version()
    assert env["packages"]["no-such-dist-xyz"] == "not-installed"
    assert env["packages"]["scikit-learn"][0].isdigit()


def test_canonical_json_handles_sets_numpy_scalars_and_unknown_objects() -> None:
    import numpy as np

    assert canonical_json({"b": 1, "a": (1, 2)}) == '{"a":[1,2],"b":1}'
    assert canonical_json({"s": {2, 1}}) == canonical_json({"s": {1, 2}})
    assert canonical_json(np.float64(0.5)) == "0.5"
    assert canonical_json(np.int64(3)) == "3"
