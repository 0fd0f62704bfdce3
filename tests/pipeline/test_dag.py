"""``Pipeline``: wiring by names, build-time errors, order, layers, params."""

from __future__ import annotations

import pytest

from loopml.kernel.exceptions import PipelineError
from loopml.pipeline import REQUIRED, Pipeline, step


@step
def raw(*, rows: int = 10) -> list[int]:
    return list(range(rows))


@step
def clean(raw: list[int]) -> list[int]:
    return raw


@step(outputs=("train", "test"))
def split(clean: list[int], *, ratio: float = 0.8) -> tuple[list[int], list[int]]:
    n = int(len(clean) * ratio)
    return clean[:n], clean[n:]


@step
def fit(train: list[int], *, alpha: float) -> float:
    return sum(train) * alpha


@step
def score(fit: float, test: list[int]) -> float:
    return fit - sum(test)


@step
def profile(clean: list[int]) -> dict[str, int]:
    return {"n": len(clean)}


def test_order_is_topological_whatever_the_declaration_order() -> None:
    p = Pipeline([score, fit, split, clean, raw, profile], name="train")
    names = [s.name for s in p.steps]
    assert names.index("raw") < names.index("clean") < names.index("split") < names.index("fit") < names.index("score")
    assert len(p) == 6 and "fit" in p and p.step("fit") is fit


def test_layers_group_independent_steps() -> None:
    p = Pipeline([raw, clean, split, profile, fit, score])
    assert [[s.name for s in layer] for layer in p.layers()] == [
        ["raw"], ["clean"], ["split", "profile"], ["fit"], ["score"],
    ]


def test_inputs_params_upstream_and_outputs() -> None:
    p = Pipeline([raw, clean, split, fit, score, profile])
    assert p.inputs("score") == ("fit", "test")
    assert p.upstream("score") == ("fit", "split")
    assert p.params_of("fit") == ("alpha",)
    assert p.producer("test") == "split"
    assert p.params == {"rows": 10, "ratio": 0.8, "alpha": REQUIRED}
    assert set(p.final_outputs) == {"score", "profile"}


def test_resolve_params_fills_defaults_and_rejects_unknown_or_missing() -> None:
    p = Pipeline([raw, clean, split, fit, score])
    resolved = p.resolve_params({"alpha": 0.5})
    assert resolved["fit"] == {"alpha": 0.5} and resolved["raw"] == {"rows": 10}
    with pytest.raises(PipelineError, match=r"unknown parameter 'alpah' for pipeline 'pipeline'; parameters: 'rows', 'ratio', 'alpha'"):
        p.resolve_params({"alpah": 1, "alpha": 1})
    with pytest.raises(PipelineError, match=r"'clean' is an output of step 'clean', not a parameter"):
        p.resolve_params({"clean": [], "alpha": 1})
    with pytest.raises(PipelineError, match=r"step 'fit' needs parameter 'alpha', which no step produces and params does not set"):
        p.resolve_params({})


def test_missing_input_names_the_known_outputs() -> None:
    @step
    def train(features: list[int]) -> int:
        return 0

    with pytest.raises(PipelineError, match=r"step 'train' needs input 'features', which no step produces; known outputs: 'raw', 'clean'"):
        Pipeline([raw, clean, train])


def test_duplicate_output_is_rejected() -> None:
    @step(name="clean2", outputs=("clean",))
    def other(raw: list[int]) -> list[int]:
        return raw

    with pytest.raises(PipelineError, match=r"output 'clean' is produced by both step 'clean' and step 'clean2'; each output must have exactly one producer"):
        Pipeline([raw, clean, other])


def test_duplicate_step_name_is_rejected() -> None:
    with pytest.raises(PipelineError, match=r"pipeline 'p' has two steps named 'raw'"):
        Pipeline([raw, raw], name="p")


def test_cycle_is_reported_with_its_path() -> None:
    @step
    def a(c: int) -> int:
        return c

    @step
    def b(a: int) -> int:
        return a

    @step
    def c(b: int) -> int:
        return b

    with pytest.raises(PipelineError, match=r"pipeline 'loop' has a cycle: (a -> b -> c -> a|b -> c -> a -> b|c -> a -> b -> c)"):
        Pipeline([a, b, c], name="loop")

    @step(name="selfish", outputs=("x",))
    def selfish(x: int) -> int:
        return x

    with pytest.raises(PipelineError, match=r"has a cycle: selfish -> selfish"):
        Pipeline([selfish], name="loop")


def test_empty_pipeline_and_non_steps_are_rejected() -> None:
    with pytest.raises(PipelineError, match=r"pipeline 'empty' has no steps"):
        Pipeline([], name="empty")

    def plain(x: int) -> int:
        return x

    with pytest.raises(PipelineError, match=r"pipeline 'p': item 1 \(plain\) is a function, not a step; decorate it with @step"):
        Pipeline([raw, plain], name="p")  # type: ignore[list-item]
    with pytest.raises(PipelineError, match=r"pipeline name 'bad name' is invalid"):
        Pipeline([raw], name="bad name")


def test_unknown_step_and_output_lookups() -> None:
    p = Pipeline([raw, clean], name="p")
    with pytest.raises(PipelineError, match=r"pipeline 'p' has no step 'fit'; steps: 'raw', 'clean'"):
        p.step("fit")
    with pytest.raises(PipelineError, match=r"pipeline 'p' has no output 'model'; outputs: 'raw', 'clean'"):
        p.producer("model")


def test_shared_param_with_different_defaults_is_required() -> None:
    @step
    def one(*, seed: int = 1) -> int:
        return seed

    @step
    def two(*, seed: int = 2) -> int:
        return seed

    p = Pipeline([one, two])
    assert p.params == {"seed": REQUIRED}
    assert p.resolve_params({"seed": 7}) == {"one": {"seed": 7}, "two": {"seed": 7}}
