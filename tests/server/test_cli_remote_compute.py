"""The compute verbs with only ``LOOPML_SERVER_URL`` + ``LOOPML_TOKEN``: ``loopml run`` submits the recipe to the
server's scheduler (a local data file goes up as a dataset version, a local contract inline) and prints the result
a local run prints; ``loopml score`` uploads the file, the server scores and records it, and the output and
rejects come back checked against their sha256; ``triggers fire --run`` waits for the scheduler's run. Each acts as
the token's user; roles without the action are refused with nothing written; bad input is a 4xx naming the field."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from loopml.ingest import get_dataset_version
from loopml.kernel.exceptions import PipelineError
from loopml.metadata.audit import audit_log
from loopml.scheduler import Scheduler
from loopml.server.client import RemoteClient
from loopml.trigger import list_run_requests
from tests.monitor.test_monitor_run import make_model

from .conftest import Live
from .test_cli_remote import _cli_alone, _cli_here

CONTRACT = """version: 1
columns:
  a: {type: float, nullable: false}
  b: {type: category, nullable: false, categories: [x, y], unseen: reject}
  label: {type: int, nullable: false}
target: label
"""
RECIPE = """name: retrain
data: {dataset: w, source: w.csv, target: label, contract: c.yaml}
train: {estimator: sklearn.linear_model.LogisticRegression}
evaluate: {slices: [b]}
register: {model: churn, alias_on_pass: challenger}
"""


@pytest.fixture
def scheduler(live: Live) -> Iterator[Scheduler]:
    """The server's scheduler on the server's store: it runs what is submitted (as ``loopml up`` does)."""
    sched = Scheduler(live.ws, holder="test-scheduler", tick_s=0.2, rollout_tick_s=0)
    thread = threading.Thread(target=sched.run_forever, daemon=True)
    thread.start()
    yield sched
    sched.stop()
    thread.join(timeout=10)


def _files(tmp_path: Path, *, recipe: str = RECIPE) -> dict[str, Path]:
    """A user's files: 200 rows ``a, b, label`` (label follows ``a``), their contract, and the recipe."""
    rng = np.random.default_rng(0)
    a = rng.normal(size=200)
    frame = pd.DataFrame({"a": a, "b": rng.choice(["x", "y"], 200), "label": (a > 0).astype(int)})
    files = {name: tmp_path / "mine" / name for name in ("w.csv", "c.yaml", "r.yaml")}
    files["w.csv"].parent.mkdir(parents=True)
    frame.to_csv(files["w.csv"], index=False)
    files["c.yaml"].write_text(CONTRACT)
    files["r.yaml"].write_text(recipe)
    return files


def test_run_goes_to_the_servers_scheduler_as_the_token_user(live: Live, scheduler: Scheduler,
                                                               monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    files = _files(tmp_path)
    over_http, here = _cli_alone(live, monkeypatch, tmp_path), _cli_here(live, monkeypatch)

    shown = over_http("run", str(files["r.yaml"]), role="data_scientist")
    assert shown.exit_code == 0, shown.output
    assert "pipeline run" in shown.stdout and "registered: churn/1 (challenger)" in shown.stdout, shown.stdout
    assert "evaluation on the test split" in shown.stdout and "b=x" in shown.stdout
    # the data went up as a version of w; the scheduler ran the recipe as the one who submitted it
    assert [e.actor for e in audit_log(live.ws, action="dataset.ingest")] == ["data_scientist"]
    assert get_dataset_version(live.ws, "w@1").source["path"] == "upload:w.csv"  # not the server's temporary copy
    assert audit_log(live.ws, action="model.register")[0].actor == "data_scientist"
    submitted = audit_log(live.ws, action="run_request.submit")[0]
    assert submitted.actor == "data_scientist" and submitted.after["context"]["recipe"] == "retrain"
    (request,) = list_run_requests(live.ws)
    assert request.status == "succeeded" and request.result["model_version"]["version"] == 1
    assert request.context["by"] == "data_scientist"
    events = request.progress["events"]  # what the remote CLI replays into the same progress display
    assert [e[0] for e in events if e[1] != "running"] == [s["name"] for s in request.result["steps"]]
    assert len(events) == 14 and {e[1] for e in events} == {"running", "succeeded"}
    assert "register" in shown.stderr and "7/7 steps" in shown.stderr, shown.stderr

    # the JSON is the local run's: same data, same split, same model, so the same evaluation
    remote = json.loads(over_http("run", str(files["r.yaml"]), "--json", role="data_scientist").stdout)
    local = json.loads(here("run", str(files["r.yaml"]), "--json").stdout)
    assert remote["evaluation"]["metrics"] == pytest.approx(local["evaluation"]["metrics"])
    assert [s["name"] for s in remote["steps"]] == [s["name"] for s in local["steps"]]
    assert remote["dataset_version"]["ref"] == local["dataset_version"]["ref"] == "w@1"  # same content, one version

    # --detach queues and returns; the request is there to follow
    detached = json.loads(over_http("run", str(files["r.yaml"]), "--detach", "--json", "-p", "train.params.C=0.5",
                                    role="data_scientist").stdout)
    assert detached["status"] == "pending" and detached["context"]["type"] == "submitted"

    # the Python API: the same verb, waiting for the run's result
    with RemoteClient(live.url, live.tokens["data_scientist"]) as client:
        result = client.run_recipe(files["r.yaml"], reason="from a notebook")
        assert result["model_version"]["name"] == "churn" and result["status"] == "succeeded"
        assert client.get_run_request(detached["id"])["status"] == "succeeded"  # the scheduler ran it meanwhile


def test_run_refusals_and_bad_recipes_write_nothing(live: Live, scheduler: Scheduler,
                                                    monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    files = _files(tmp_path)
    over_http = _cli_alone(live, monkeypatch, tmp_path)
    refused = over_http("run", str(files["r.yaml"]), role="viewer")
    assert refused.exit_code == 1 and "may not" in refused.stderr, refused.output
    assert list_run_requests(live.ws) == [] and audit_log(live.ws, action="dataset.ingest") == []

    executor = over_http("run", str(files["r.yaml"]), "--executor", "ray", role="data_scientist")
    assert executor.exit_code == 2 and "--executor" in executor.stderr and "--here" in executor.stderr

    # over HTTP: a bad gate, a server-side file that is not there, an unregistered dataset, a broken contract
    http = live.client("data_scientist")
    base = {"name": "r", "data": {"dataset": "w", "target": "label"},
            "train": {"estimator": "sklearn.linear_model.LogisticRegression"}, "register": {"model": "churn"}}
    cases = [
        ({**base, "gates": ["accuracy[nope] >= 0.8"]}, "gates[0]"),
        ({**base, "data": {**base["data"], "source": str(tmp_path / "absent.csv")}}, "data.source"),
        ({**base, "data": {**base["data"], "contract": str(tmp_path / "absent.yaml")}}, "data.contract"),
        ({**base, "data": {**base["data"], "source": "x.csv", "version": 2}}, "version"),
        ({**base, "data": {**base["data"], "contract": {"columns": {"a": {"type": "floaty"}}}}}, "type"),
        ({**base, "train": {}}, "estimator"),
    ]
    for recipe, field in cases:
        answer = http.post("/run-requests", json={"recipe": recipe})
        assert answer.status_code == 422, (field, answer.text)
        assert field in answer.json()["error"] or answer.json().get("field") == field, (field, answer.json())
    missing = http.post("/run-requests", json={"recipe": base})
    assert missing.status_code == 404 and "dataset 'w' not found" in missing.json()["error"]
    assert list_run_requests(live.ws) == []

    # data the upload refuses: the message names the user's file, not the server's temporary copy
    untargeted = _files(tmp_path / "t", recipe=RECIPE.replace("target: label", "target: nope"))
    refused_upload = over_http("run", str(untargeted["r.yaml"]), role="data_scientist")
    assert refused_upload.exit_code == 2, refused_upload.output
    assert "'nope' is not in upload:w.csv" in refused_upload.stderr

    # a recipe that fails while it runs: the command fails with the run's error, the request says failed
    negative_c = RECIPE.replace("LogisticRegression}", "LogisticRegression, params: {C: -1.0}}")
    broken = _files(tmp_path / "b", recipe=negative_c)
    failed = over_http("run", str(broken["r.yaml"]), role="data_scientist")
    assert failed.exit_code == 1 and "failed" in failed.stderr and "'C' parameter" in failed.stderr, failed.output
    assert [r.status for r in list_run_requests(live.ws)] == ["failed"]
    with RemoteClient(live.url, live.tokens["data_scientist"]) as client, pytest.raises(PipelineError, match="'C'"):
        client.run_recipe(broken["r.yaml"])


def test_score_uploads_the_file_and_brings_back_what_a_local_score_writes(
        live: Live, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    make_model(live.ws)
    rows = tmp_path / "rows.csv"
    rows.write_text("tenure,charges,plan\n10.5,3.0,basic\n99,2.0,pro\n12.0,4.5,pro\nabc,1.0,basic\n")
    over_http, here = _cli_alone(live, monkeypatch, tmp_path), _cli_here(live, monkeypatch)

    remote_out, local_out = tmp_path / "remote.parquet", tmp_path / "local.parquet"
    shown = over_http("score", "churn@champion", "-i", str(rows), "-o", str(remote_out), role="data_scientist")
    assert shown.exit_code == 0, shown.output
    assert "Scored 2 of 4 rows with churn/1" in shown.stdout and "2 rows rejected" in shown.stdout, shown.stdout
    assert here("score", "churn@champion", "-i", str(rows), "-o", str(local_out)).exit_code == 0
    pd.testing.assert_frame_equal(pd.read_parquet(remote_out), pd.read_parquet(local_out))
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "remote.rejects.parquet"),
                                  pd.read_parquet(tmp_path / "local.rejects.parquet"))

    remote_event, local_event = audit_log(live.ws, action="prediction_batch.score", limit=2)[::-1]
    assert remote_event.actor == "data_scientist"
    assert remote_event.after["input_path"] == "upload:rows.csv"
    assert remote_event.after["output_path"] == f"artifact:{remote_event.after['output_digest']}"
    assert remote_event.after["input_digest"] == local_event.after["input_digest"]

    # CSV out, and JSON with this machine's paths
    data = json.loads(over_http("score", "churn/1", "-i", str(rows), "-o", str(tmp_path / "o.csv"), "--json",
                                role="data_scientist").stdout)
    assert data["output_path"] == str(tmp_path / "o.csv") and data["reject_path"] == str(tmp_path / "o.rejects.csv")
    assert pd.read_csv(tmp_path / "o.csv")["prediction"].tolist() == pd.read_parquet(local_out)["prediction"].tolist()

    # a batch serves only its own files
    http = live.client("viewer")
    batch = data["batch_id"]
    assert http.get(f"/prediction-batches/{batch}/files/{data['output_digest']}").status_code == 200
    other = remote_event.after["output_digest"]  # the first batch's Parquet output, not this batch's CSV
    assert other != data["output_digest"]
    assert http.get(f"/prediction-batches/{batch}/files/{other}").status_code == 404
    assert http.get(f"/prediction-batches/{remote_event.object_id}/files/{other}").status_code == 200
    model_digest = live.client().get("/models/churn/versions/1").json()["artifact_digest"]
    assert http.get(f"/prediction-batches/{batch}/files/{model_digest}").status_code == 404  # never a pickle


def test_score_refusals_and_bad_input_record_nothing(live: Live, monkeypatch: pytest.MonkeyPatch,
                                                     tmp_path: Path) -> None:
    make_model(live.ws)
    rows = tmp_path / "rows.csv"
    rows.write_text("tenure,plan\n10.5,basic\n")
    over_http = _cli_alone(live, monkeypatch, tmp_path)
    refused = over_http("score", "churn/1", "-i", str(rows), "-o", str(tmp_path / "o.parquet"), role="viewer")
    assert refused.exit_code == 1 and "may not" in refused.stderr
    missing = over_http("score", "churn/1", "-i", str(rows), "-o", str(tmp_path / "o.parquet"), role="data_scientist")
    assert missing.exit_code == 2 and "'charges'" in missing.stderr, missing.output
    http = live.client("data_scientist")
    answers = {
        "model": http.post("/prediction-batches", params={"model": "churn/9"}, content=b"tenure\n1\n",
                           headers={"Content-Type": "text/csv"}),
        "ref": http.post("/prediction-batches", params={"model": "no such ref!"}, content=b"tenure\n1\n",
                         headers={"Content-Type": "text/csv"}),
        "body": http.post("/prediction-batches", params={"model": "churn/1"}, content=b"",
                          headers={"Content-Type": "text/csv"}),
        "format": http.post("/prediction-batches", params={"model": "churn/1", "output_format": "xlsx"},
                            content=b"tenure\n1\n", headers={"Content-Type": "text/csv"}),
    }
    assert {k: a.status_code for k, a in answers.items()} == {"model": 404, "ref": 422, "body": 422, "format": 422}
    assert all("error" in a.json() for a in answers.values())
    assert not (tmp_path / "o.parquet").exists()
    assert audit_log(live.ws, action="prediction_batch.score") == []


def test_fire_run_waits_for_the_servers_scheduler(live: Live, scheduler: Scheduler, monkeypatch: pytest.MonkeyPatch,
                                                  tmp_path: Path) -> None:
    from loopml.recipes import load_spec
    from loopml.trigger import add_trigger

    files = _files(tmp_path)  # on the server's disk too: this test's server runs on this machine
    add_trigger(live.ws, "nightly", "manual", recipe=load_spec(files["r.yaml"]).model_dump(by_alias=True, mode="json"))
    over_http = _cli_alone(live, monkeypatch, tmp_path)
    fired = over_http("triggers", "fire", "nightly", "--run", "--reason", "new labels", role="ml_engineer")
    assert fired.exit_code == 0, fired.output
    (request,) = list_run_requests(live.ws)
    assert f"run request {request.id}: succeeded, run {request.run_id}" in fired.stdout
    assert request.context["reason"] == "new labels" and request.result["model_version"]["name"] == "churn"
