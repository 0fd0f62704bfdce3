"""Step outputs to bytes and back."""

from __future__ import annotations

import pandas as pd
import pytest

from loopml.kernel.exceptions import ArtifactError
from loopml.runner._serialize import dumps, loads


def test_dataframe_goes_to_parquet() -> None:
    df = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]}, index=[10, 11])
    data, media_type, meta = dumps(df)
    assert data[:4] == b"PAR1" and media_type == "application/vnd.apache.parquet"
    assert meta["serializer"] == "parquet" and meta["python_type"].endswith("DataFrame")
    pd.testing.assert_frame_equal(loads(data, meta), df)


def test_dataframe_parquet_cannot_hold_falls_back_to_pickle() -> None:
    df = pd.DataFrame({"mixed": [1, "x"]})  # pyarrow cannot type an int/str column
    data, _, meta = dumps(df)
    assert meta["serializer"] == "cloudpickle" and "parquet_error" in meta
    pd.testing.assert_frame_equal(loads(data, meta), df)


def test_other_values_are_cloudpickled() -> None:
    value = {"a": [1, 2], "f": (lambda x: x + 1)}
    data, media_type, meta = dumps(value)
    assert meta["serializer"] == "cloudpickle" and media_type == "application/vnd.loopml.cloudpickle"
    back = loads(data, meta)
    assert back["a"] == [1, 2] and back["f"](1) == 2


def test_unknown_serializer_and_corrupt_bytes() -> None:
    with pytest.raises(ArtifactError, match=r"unknown serializer 'yaml' in artifact meta"):
        loads(b"", {"serializer": "yaml"})
    with pytest.raises(ArtifactError, match=r"could not load a step output \(builtins.dict\) with serializer 'cloudpickle'"):
        loads(b"not a pickle", {"serializer": "cloudpickle", "python_type": "builtins.dict"})
