"""RunDir: one run directory's layout, read from real files (and the model card export writes from it)."""

import json

import pytest
from torch import nn

from jewelgan.runs.checkpoint import save_checkpoint
from jewelgan.runs.rundir import MetricsLog, RunDir, lineage_totals, rewind_metrics
from test_train import make_shapes, tiny


def _checkpoint(run, step):
    return save_checkpoint(run, step, {"G": nn.Linear(2, 2)}, {}, {}, keep_last=10)


def test_of_finds_the_run_of_a_checkpoint_folder(tmp_path):
    run = tmp_path / "00000-dcgan-32"
    ckpt = _checkpoint(run, 3)
    assert RunDir.of(ckpt).path == run and RunDir.of(run).path == run
    # a run kept under a folder that happens to be called checkpoints is still its own run
    other = tmp_path / "checkpoints" / "00001-dcgan-32"
    other.mkdir(parents=True)
    assert RunDir.of(other).path == other


def test_checkpoints_are_the_complete_ones_oldest_first(tmp_path):
    run = RunDir(tmp_path / "run")
    assert run.checkpoints() == [] and run.latest_checkpoint() is None
    first, second = _checkpoint(run.path, 1), _checkpoint(run.path, 20)
    (run.checkpoints_dir / "step-000000300").mkdir()  # no state.json: a write that never finished
    assert run.checkpoints() == [first, second] and run.latest_checkpoint() == second


def test_metrics_skip_a_cut_line_and_rewind_keeps_the_lines_up_to_a_step(tmp_path):
    log = MetricsLog(tmp_path)
    for step in (1, 2, 3):
        log.write({"kind": "train", "step": step, "loss_G": 0.5 * step})
    log.close()
    run = RunDir(tmp_path)
    with open(run.metrics_file, "a") as f:
        f.write('{"kind": "train", "st')  # killed half-way through a line
    assert [r["step"] for r in run.metrics()] == [1, 2, 3]
    rewind_metrics(tmp_path, 2)
    assert run.metrics() == [{"kind": "train", "step": 1, "loss_G": 0.5}, {"kind": "train", "step": 2, "loss_G": 1.0}]
    assert run.metrics_file.read_text().count("\n") == 2
    assert RunDir(tmp_path / "empty").metrics() == []


def test_a_run_without_run_json_or_config_reads_as_empty(tmp_path):
    ckpt = _checkpoint(tmp_path / "bare", 1)
    run = RunDir.of(ckpt)
    assert run.provenance() == {} and run.config_text() == "" and run.grids() == []


def test_grids_are_listed_in_order(tmp_path):
    run = RunDir(tmp_path)
    run.samples_dir.mkdir()
    for name in ("grid-000002.png", "reals.png", "grid-000001.png"):
        (run.samples_dir / name).write_bytes(b"")
    assert [p.name for p in run.grids()] == ["grid-000001.png", "grid-000002.png"]


def test_lineage_totals_add_up_the_whole_chain():
    chain = {"kimg": 10.0, "seconds": 60.0, "init_from": {"kimg": 5.0, "seconds": 30.0, "init_from": None}}
    assert lineage_totals(chain) == (15.0, 90.0) and lineage_totals(None) == (0.0, 0.0)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from jewelgan.train import train

    root = tmp_path_factory.mktemp("rundir")
    data = make_shapes(root / "data" / "shapes.jga", n=16)
    return train(tiny(data, model="dcgan", kimg=0.016, out=root / "runs")), data


@pytest.mark.usefixtures("one_thread")
def test_a_trained_run_reads_back_through_rundir(trained):
    from jewelgan.data.archive import Archive

    path, data = trained
    run = RunDir(path)
    assert run.provenance()["archive"]["content_hash"] == Archive(data).content_hash
    assert run.config_text().startswith("# jewelgan resolved training config")
    assert run.latest_checkpoint() is not None and RunDir.of(run.latest_checkpoint()).path == path
    assert {r["kind"] for r in run.metrics()} >= {"train"}


@pytest.mark.usefixtures("one_thread")
def test_the_card_names_archives_by_file_name_and_hash(trained, tmp_path):
    from jewelgan.data.archive import Archive
    from jewelgan.inference.export import save_pretrained

    path, data = trained
    digest = Archive(data).content_hash
    evaluation = tmp_path / "eval.json"
    evaluation.write_text(json.dumps({"n": 8, "archive": str(data.resolve()), "content_hash": digest,
                                      "metrics": {"fid": 12.5}}))
    folder = save_pretrained(path, tmp_path / "model", evaluation=evaluation)
    card = (folder / "README.md").read_text()
    assert f"- data: `shapes.jga`, 16 images (archive {digest})" in card
    assert f"Against `shapes.jga` (archive {digest}) with n = 8" in card
    assert str(data.parent) not in card
