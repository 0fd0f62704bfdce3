"""``@step``: outputs, parameters, validation."""

from __future__ import annotations

import pytest

from loopml.kernel.exceptions import PipelineError
from loopml.pipeline import DEFAULT, INPUTS, NONE, REQUIRED, Step, step


def test_bare_decorator_names_one_output_after_the_function() -> None:
    @step
    def clean(raw: list[int]) -> list[int]:
        """Drop negatives."""
        return [x for x in raw if x >= 0]

    assert isinstance(clean, Step)
    assert clean.name == "clean" and clean.outputs == ("clean",)
    assert clean.cache == DEFAULT
    assert clean.__doc__ == "Drop negatives."
    assert clean([-1, 2]) == [2]  # a step is still callable


def test_decorator_with_options() -> None:
    @step(outputs=("train", "test"), cache=INPUTS, resources={"cpus": 1})
    def split(data: list[int], *, ratio: float = 0.5) -> tuple[list[int], list[int]]:
        n = int(len(data) * ratio)
        return data[:n], data[n:]

    assert split.outputs == ("train", "test")
    assert split.cache == INPUTS
    assert dict(split.resources) == {"cpus": 1}
    assert dict(split.parameters) == {"data": REQUIRED, "ratio": 0.5}
    assert split.keyword_parameters == {"ratio"}


def test_cache_false_is_none_and_true_is_default() -> None:
    assert step(cache=False)(lambda_free).cache == NONE
    assert step(cache=True)(lambda_free).cache == DEFAULT


def lambda_free(x: int) -> int:
    return x


def test_split_outputs_tuple_dict_and_single() -> None:
    two = step(outputs=("a", "b"))(lambda_free)
    assert two.split_outputs((1, 2)) == {"a": 1, "b": 2}
    assert two.split_outputs({"b": 2, "a": 1}) == {"a": 1, "b": 2}
    assert step(lambda_free).split_outputs((1, 2)) == {"lambda_free": (1, 2)}
    assert step(outputs=())(lambda_free).split_outputs(None) == {}


def test_split_outputs_errors() -> None:
    two = step(outputs=("a", "b"))(lambda_free)
    with pytest.raises(PipelineError, match=r"step 'lambda_free' declares 2 outputs \('a', 'b'\) but returned 3 values"):
        two.split_outputs((1, 2, 3))
    with pytest.raises(PipelineError, match=r"declares outputs 'a', 'b' but returned a dict with keys 'a', 'c'"):
        two.split_outputs({"a": 1, "c": 2})
    with pytest.raises(PipelineError, match=r"declares outputs 'a', 'b' but returned a int; return a tuple of 2"):
        two.split_outputs(5)
    with pytest.raises(PipelineError, match=r"declares no outputs but returned a int"):
        step(outputs=())(lambda_free).split_outputs(5)


def test_bad_declarations_are_rejected() -> None:
    def f(x: int) -> int:
        return x

    with pytest.raises(PipelineError, match=r"step 'f' declares output 'a' twice"):
        step(outputs=("a", "a"))(f)
    with pytest.raises(PipelineError, match=r"step 'f': output 'not valid' is not a valid Python identifier"):
        step(outputs=("not valid",))(f)
    with pytest.raises(PipelineError, match=r"step 'f': cache must be a cache policy .* not 'yes'"):
        step(cache="yes")(f)  # type: ignore[arg-type]
    with pytest.raises(PipelineError, match=r"step 'f': resource 'cpus' must be a non-negative number, got -1"):
        step(resources={"cpus": -1})(f)
    with pytest.raises(PipelineError, match=r"@step needs a named function or name=...; got a lambda"):
        step(lambda x: x)
    with pytest.raises(PipelineError, match=r"@step decorates functions, not int objects"):
        step(3)  # type: ignore[call-overload]


def test_star_args_and_positional_only_are_rejected() -> None:
    def many(*rows: int) -> int:
        return 0

    def kw(**options: int) -> int:
        return 0

    def pos(x: int, /) -> int:
        return x

    with pytest.raises(PipelineError, match=r"step 'many' takes \*rows; steps take named parameters only"):
        step(many)
    with pytest.raises(PipelineError, match=r"step 'kw' takes \*\*options"):
        step(kw)
    with pytest.raises(PipelineError, match=r"step 'pos': parameter 'x' is positional-only"):
        step(pos)


def test_name_overrides_function_name() -> None:
    s = step(name="double")(lambda_free)
    assert s.name == "double" and s.outputs == ("double",)
    assert s.reference.endswith(":lambda_free")
