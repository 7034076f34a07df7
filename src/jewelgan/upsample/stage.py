"""An upsampling stage's files in a model folder, and the chain of stages that reaches a requested size.

    MODEL_DIR/
        upsampler-64-256.safetensors   the stage's weights (its EMA), safetensors only
        upsampler-64-256.json          format tag, sizes, network config, label schema, training summary
A model folder holds any number of stages; a size is reachable when stages chain from the base resolution to it
(64 -> 256, 64 -> 512, or 64 -> 256 -> 512). Files a user hands us are never unpickled.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import save as st_save

from jewelgan.atomic import atomic_write_json, atomic_write_text, write_durable
from jewelgan.data.labels import LabelSchema
from jewelgan.formats import read_safetensors, read_tagged_json
from jewelgan.models.upsampler import Upsampler

FORMAT = "jewelgan-upsampler"
VERSION = 1
_NAME = re.compile(r"^upsampler-(\d+)-(\d+)\.json$")


class StageError(ValueError):
    """A stage file that is missing, damaged or does not fit its model."""


@dataclass
class Stage:
    net: Upsampler
    schema: LabelSchema
    size_in: int
    size_out: int
    meta: dict


def stage_stem(size_in: int, size_out: int) -> str:
    return f"upsampler-{size_in}-{size_out}"


def write_stage(folder: str | Path, net: Upsampler, schema: LabelSchema, size_in: int, meta: dict) -> Path:
    """Write the stage's weights and JSON into a model folder (weights first: the JSON marks it complete)."""
    folder = Path(folder)
    stem = stage_stem(size_in, size_in * net.scale)
    tensors = {k: v.detach().contiguous().float() for k, v in net.state_dict().items()}
    write_durable(folder / f"{stem}.safetensors", st_save(tensors))
    atomic_write_json(folder / f"{stem}.json", {"format": FORMAT, "version": VERSION, "size_in": size_in,
                                                "size_out": size_in * net.scale, "network": net.config,
                                                "schema": schema.to_json(), **meta})
    return folder / f"{stem}.json"


def read_stage(json_path: str | Path) -> Stage:
    json_path = Path(json_path)
    meta = read_tagged_json(json_path, FORMAT, VERSION, StageError)
    tensors = read_safetensors(json_path.with_suffix(".safetensors"), StageError)
    try:
        cfg = meta["network"]
        net = Upsampler(cfg["channels"], cfg["scale"], cfg["width"], cfg["blocks"], tuple(cfg["attribute_sizes"]),
                        cfg["embed"])
        net.load_state_dict(tensors)
        schema = LabelSchema.from_json(meta["schema"])
    except (KeyError, TypeError, ValueError, RuntimeError) as e:
        raise StageError(f"{json_path}: does not describe a loadable upsampler ({str(e).splitlines()[0]})") from None
    # channels_last: oneDNN's convolutions run this network ~1.3-1.6x faster in NHWC on CPU
    # (benchmarks/upsample_quality.py --speed)
    net.eval().requires_grad_(False).to(memory_format=torch.channels_last)
    return Stage(net, schema, int(meta["size_in"]), int(meta["size_out"]), meta)


def read_stages(folder: str | Path) -> list[Stage]:
    """Every stage in a model folder (none for a run or checkpoint folder)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return [read_stage(p) for p in sorted(folder.iterdir()) if _NAME.match(p.name)]


def chain(base: int, stages: list[Stage], size: int) -> list[Stage] | None:
    """The fewest stages that lead from the base resolution to `size` (None if no chain does)."""
    frontier: list[tuple[int, list[Stage]]] = [(base, [])]
    seen = {base}
    while frontier:
        nxt = []
        for res, path in frontier:
            if res == size:
                return path
            for s in stages:
                if s.size_in == res and s.size_out not in seen:
                    seen.add(s.size_out)
                    nxt.append((s.size_out, path + [s]))
        frontier = nxt
    return None


def sizes(base: int, stages: list) -> list[int]:
    """Every size the model draws: its own and each one a chain of stages reaches (Stage objects, or the
    (size_in, size_out) pairs that stage_pairs reads from file names without loading weights)."""
    pairs = [(s.size_in, s.size_out) if isinstance(s, Stage) else tuple(s) for s in stages]
    out = {base}
    grew = True
    while grew:
        grew = False
        for a, b in pairs:
            if a in out and b not in out:
                out.add(b)
                grew = True
    return sorted(out)


def stage_pairs(folder: str | Path) -> list[tuple[int, int]]:
    """(size_in, size_out) of each stage file in a model folder, from the names alone."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return [(int(m.group(1)), int(m.group(2))) for p in sorted(folder.iterdir()) if (m := _NAME.match(p.name))]


def map_labels(labels: torch.Tensor, base: LabelSchema, stage: LabelSchema) -> torch.Tensor:
    """The base model's label rows in the stage's schema, by attribute and value name (-1 = unknown)."""
    out = torch.full((len(labels), len(stage.names)), -1, dtype=torch.long)
    for j, name in enumerate(stage.names):
        if name not in base.attributes:
            continue
        i = base.names.index(name)
        table = torch.tensor([list(stage.attributes[name]).index(v) if v in stage.attributes[name] else -1
                              for v in base.attributes[name]] + [-1], dtype=torch.long)
        col = labels[:, i].long()
        out[:, j] = table[torch.where(col < 0, len(table) - 1, col)]
    return out


def stage_from_run(run: str | Path) -> tuple[Upsampler, LabelSchema, dict]:
    """The EMA upsampler of a training run's latest checkpoint, its schema and a training summary."""
    from jewelgan.runs.checkpoint import CheckpointError, open_checkpoint

    try:
        ck = open_checkpoint(run)
    except CheckpointError as e:
        raise StageError(str(e)) from None
    if ck.state.get("kind") != "upsampler":
        raise StageError(f"{ck.path}: not an upsampler run (train one with `jewelgan train-upsampler`)")
    cfg = ck.state["config"]
    schema = LabelSchema.from_json(ck.state["schema"])
    from jewelgan.models.layers import schema_sizes

    net = Upsampler(ck.state["channels"], cfg["scale"], cfg["width"], cfg["blocks"], tuple(schema_sizes(schema)))
    net.load_state_dict(ck.tensors("U_ema"))
    run_json = Path(run) / "run.json"
    archives = json.loads(run_json.read_text()).get("archives", {}) if run_json.is_file() else {}
    # the recipe without this machine's paths: the archives are named by file name and hash instead
    init = ck.state.get("init")
    if init is None and cfg.get("init_from"):  # a run from before warm starts were recorded in its state
        from jewelgan.upsample.trainer import init_summary

        try:
            init = init_summary(Path(cfg["init_from"]), open_checkpoint(cfg["init_from"]).state)
        except CheckpointError:
            init = {"run": Path(cfg["init_from"]).name}
    cfg = {k: v for k, v in cfg.items() if k not in ("data", "low", "out", "name", "init_from")}
    training = {"kimg": ck.state["kimg"], "hours": round(ck.state["elapsed_s"] / 3600, 2), "step": ck.step,
                "archives": archives, "config": cfg}
    if init is not None:
        training["continued_from"] = init
    summary = {"size_in": int(ck.state["size_in"]), "channels": int(ck.state["channels"]), "training": training}
    return net.eval(), schema, summary


CARD_HEADING = "## Upsampling stages"


def card_section(stages: list[Stage]) -> str:
    """The model card's section on its stages: sizes, files, what each was trained on (archives by name and hash)."""
    lines = [CARD_HEADING, "Sizes beyond the generator's are drawn by learned upsampling stages (docs/upsampling.md):"]
    for st in sorted(stages, key=lambda x: (x.size_in, x.size_out)):
        t = st.meta.get("training", {})
        data = ", ".join(f"`{a['name']}` ({a.get('count', '?')} images, {a['content_hash']})" if "count" in a else
                         f"`{a['name']}` ({a['content_hash']})" for a in t.get("archives", {}).values())
        before, chain = "", t.get("continued_from")
        while chain:  # warm starts: each earlier run's kimg and hours, newest first
            if chain.get("kimg") is not None:
                before += f", after {chain['kimg']:.1f} kimg in {chain.get('hours', 0):.2f} h of run `{chain['run']}`"
            else:
                before += f", after run `{chain['run']}`"
            chain = chain.get("init")
        lines.append(f"- `upsampler-{st.size_in}-{st.size_out}`: {st.size_in} -> {st.size_out} px (x{st.net.scale}, "
                     f"width {st.net.config['width']}, {st.net.config['blocks']} blocks), {t.get('kimg', 0):.1f} kimg "
                     f"in {t.get('hours', 0):.2f} h{before}" + (f" on {data}" if data else ""))
    return "\n".join(lines) + "\n"


def update_card(folder: str | Path, stages: list[Stage]) -> None:
    """Replace (or add) the stages section of a model folder's README.md card."""
    replace_card_section(folder, CARD_HEADING, card_section(stages))


def replace_card_section(folder: str | Path, heading: str, section: str) -> None:
    """Replace the section under `heading` of a model folder's README.md card (up to the next ## heading), or add
    it at the end: a model folder's parts (stages, translator) each keep their own section."""
    card = Path(folder) / "README.md"
    text = card.read_text() if card.is_file() else ""
    if heading in text:
        head, rest = text.split(heading, 1)
        nxt = rest.find("\n## ")
        tail = rest[nxt + 1:] if nxt >= 0 else ""
        text = head + section + ("\n" + tail if tail else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    atomic_write_text(card, text)
