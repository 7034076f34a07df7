"""A run whose generator starts from a trained one (TrainConfig.init_from / `train --init-from`)."""

import numpy as np
import pytest
import torch

from jewelgan.config import ConfigError, TrainConfig
from jewelgan.data.archive import ArchiveWriter
from jewelgan.data.labels import LabelSchema

pytest.importorskip("jewelgan.train.loop")
pytestmark = pytest.mark.usefixtures("one_thread")


def _archive(path, metals, res=32):
    schema = LabelSchema({"category": ["ring", "pendant"], "metal": metals})
    rng = np.random.default_rng(0)
    with ArchiveWriter(path, res, schema) as w:
        for i in range(16):
            w.add(rng.integers(0, 255, (res, res, 3), dtype=np.uint8),
                  {"category": ["ring", "pendant"][i % 2], "metal": metals[i % len(metals)]}, f"img{i}")
    return path


def _config(data, tmp_path, name, **kw):
    args = dict(data=str(data), model="dcgan", model_args={"ngf": 8, "ndf": 8}, batch=4, kimg=0.008,
                out=str(tmp_path / "runs"), name=name, progress=False, grid_every=0.0, threads=1, seed=0)
    return TrainConfig(**{**args, **kw})


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """A trained run (two steps) on rings and pendants in three metals."""
    from jewelgan.train import train

    tmp = tmp_path_factory.mktemp("warm")
    data = _archive(tmp / "a.jga", ["gold", "silver", "rose"])
    return train(_config(data, tmp, "source", seed=1)), data, tmp


def test_generator_starts_from_the_source_and_d_from_scratch(source):
    from jewelgan.inference.folder import read_generator
    from jewelgan.train.loop import Trainer

    run, data, tmp = source
    _, ema = read_generator(run)
    warm = Trainer(_config(data, tmp, "warm", init_from=str(run)))
    cold = Trainer(_config(data, tmp, "cold"))
    try:
        for name, t in warm.G.state_dict().items():
            assert torch.equal(t, ema[name]), name
        for name, t in warm.G_ema.state_dict().items():  # the average starts where G does
            assert torch.equal(t, ema[name]), name
        assert any(not torch.equal(t, ema[name]) for name, t in cold.G.state_dict().items())
        for name, t in warm.D.state_dict().items():  # D: the same fresh start as a run without init_from
            assert torch.equal(t, cold.D.state_dict()[name]), name
    finally:
        warm.release()
        cold.release()


def test_another_label_set_keeps_the_shared_layers(source, capsys):
    from jewelgan.inference.folder import read_generator
    from jewelgan.train import train

    run, _, tmp = source
    data = _archive(tmp / "b.jga", ["gold", "silver", "rose", "platinum"])  # a fourth metal
    _, ema = read_generator(run)
    out = train(_config(data, tmp, "transfer", init_from=str(run), kimg=0.004))
    said = capsys.readouterr().out
    assert f"G starts from {run}" in said and "fresh: " in said
    fresh = said.split("fresh: ", 1)[1].split()[0].rstrip(",")
    assert ema[fresh].shape != read_generator(out)[1][fresh].shape  # the label embedding grew to four metals


def test_the_exported_card_counts_the_training_before(source, tmp_path):
    """Run A (from scratch) -> model folder -> run B from it -> run C from B: C's card names B and adds up
    all three runs' images and time."""
    import json

    from jewelgan.inference.export import save_pretrained as export_model
    from jewelgan.train import train

    run_a, data, tmp = source
    folder_a = export_model(run_a, tmp_path / "model_a")
    run_b = train(_config(data, tmp_path, "b", init_from=str(folder_a), kimg=0.004))
    origin = json.loads((run_b / "run.json").read_text())["init_from"]
    meta_a = json.loads((folder_a / "model.json").read_text())
    assert origin["kimg"] == meta_a["kimg"] > 0 and origin["init_from"] is None
    folder_b = export_model(run_b, tmp_path / "model_b")
    run_c = train(_config(data, tmp_path, "c", init_from=str(folder_b), kimg=0.004))
    meta_c = json.loads((export_model(run_c, tmp_path / "model_c") / "model.json").read_text())
    card = (tmp_path / "model_c" / "README.md").read_text()
    chain = meta_c["training"]["init_from"]
    assert chain["path"] == str(folder_b) and chain["init_from"]["path"] == str(folder_a)
    total = meta_a["kimg"] + json.loads((folder_b / "model.json").read_text())["kimg"] + meta_c["kimg"]
    assert f"G started from `{folder_b}`" in card and f"{total:.1f} kimg" in card
    # started from run B itself (its checkpoint, not an exported folder): the chain still reaches A
    run_d = train(_config(data, tmp_path, "d", init_from=str(run_b), kimg=0.004))
    assert json.loads((run_d / "run.json").read_text())["init_from"]["init_from"]["path"] == str(folder_a)


def test_bad_sources_are_named(source):
    from jewelgan.train.loop import Trainer

    run, data, tmp = source
    with pytest.raises(ConfigError, match="init_from: .*nowhere"):
        Trainer(_config(data, tmp, "x1", init_from=str(tmp / "nowhere")))
    with pytest.raises(ConfigError, match="is a dcgan generator, this run trains mlp"):
        Trainer(_config(data, tmp, "x2", init_from=str(run), model="mlp", model_args={}))
    big = _archive(tmp / "c.jga", ["gold", "silver", "rose"], res=64)
    with pytest.raises(ConfigError, match="matches only"):
        Trainer(_config(big, tmp, "x3", init_from=str(run)))
