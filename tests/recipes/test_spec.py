from __future__ import annotations

import copy
from pathlib import Path

import pytest

from loopml.kernel.exceptions import SpecError
from loopml.recipes import QUICKSTART_RECIPE, load_spec, parse_spec

BASE = {
    "name": "r",
    "data": {"dataset": "d", "source": "a.csv", "target": "y"},
    "train": {"estimator": "sklearn.linear_model.LogisticRegression"},
    "register": {"model": "m"},
}


def test_a_minimal_recipe_gets_defaults() -> None:
    spec = parse_spec(BASE)
    assert spec.split.method == "stratified"
    assert spec.registry.alias_on_pass == "champion"
    assert spec.experiment_name == "r"


def test_the_quickstart_recipe_is_valid() -> None:
    assert parse_spec(QUICKSTART_RECIPE).train.search.n_trials == 8


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.update(split={"method": "randm"}),
         r"r.yaml: split.method: must be one of 'random', 'stratified' or 'time' \(got 'randm'\)"),
        (lambda d: d.update(trian={}), "r.yaml: trian: unknown key; allowed keys here: name, experiment, data"),
        (lambda d: d["data"].pop("target"), "r.yaml: data.target: required key is missing"),
        (lambda d: d.update(split={"test_size": 2}), r"split.test_size: Input should be less than 1 \(got 2\)"),
        (lambda d: d["data"].update(query="select 1"), "data: 'query' needs 'sql_url'"),
        (lambda d: d["train"].update(search={"space": {}, "direction": "up"}),
         "train.search.direction: must be one of 'maximize' or 'minimize'"),
        (lambda d: d["register"].update(foo=1), "register.foo: unknown key; allowed keys here: model, alias_on_pass"),
    ],
)
def test_invalid_recipes_name_the_key_and_the_rule(mutate, message: str) -> None:
    data = copy.deepcopy(BASE)
    mutate(data)
    with pytest.raises(SpecError, match=message):
        parse_spec(data, origin="r.yaml")


def test_yaml_errors_name_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("name: r\ndata: [unclosed\n")
    with pytest.raises(SpecError, match="bad.yaml: not valid YAML at line 3"):
        load_spec(path)


def test_missing_file_is_a_spec_error(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="does not exist"):
        load_spec(tmp_path / "nope.yaml")


def test_relative_paths_resolve_against_the_recipe_file(tmp_path: Path) -> None:
    import yaml

    (tmp_path / "sub").mkdir()
    path = tmp_path / "sub" / "r.yaml"
    path.write_text(yaml.safe_dump(BASE))
    assert load_spec(path).data.source == str(tmp_path / "sub" / "a.csv")
