from __future__ import annotations

import pytest

from loopml.kernel.exceptions import ValidationError
from loopml.kernel.types import ModelRef, check_name, new_id


@pytest.mark.parametrize(
    ("text", "ref"),
    [
        ("churn@champion", ModelRef("churn", alias="champion")),
        ("churn/3", ModelRef("churn", version=3)),
        ("churn", ModelRef("churn")),
    ],
)
def test_model_refs_parse_and_print_back(text: str, ref: ModelRef) -> None:
    assert ModelRef.parse(text) == ref
    assert str(ref) == text


@pytest.mark.parametrize("bad", ["churn/0", "churn/x", "../etc@a", "", "a b"])
def test_bad_model_refs_name_the_rule(bad: str) -> None:
    with pytest.raises(ValidationError, match="invalid|positive integer"):
        ModelRef.parse(bad)


def test_names_cannot_escape_a_folder() -> None:
    with pytest.raises(ValidationError, match="name '../x' is invalid"):
        check_name("../x")


def test_ids_are_unique_and_time_ordered() -> None:
    ids = [new_id() for _ in range(100)]
    assert len(set(ids)) == 100
    assert ids == sorted(ids)
