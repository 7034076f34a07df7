"""`jewelgan study ...`: create a real-or-generated study, invite people, serve it, read the results."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer

from jewelgan.cli.app import app, fail

study_app = typer.Typer(help="Human evaluation: a real-or-generated study people take in a browser.",
                        no_args_is_help=True)
app.add_typer(study_app, name="study")


@study_app.command("create")
def create_cmd(
    data: Path = typer.Option(..., "--data", help="The archive the real images come from."),
    out: Path = typer.Option(..., "--out", help="The study file to write (SQLite)."),
    model: Optional[str] = typer.Option(None, "--model", help="A shipped model or model folder (default: shipped)."),
    run: Optional[Path] = typer.Option(None, "--run", help="Or a run directory."),
    n: int = typer.Option(100, "--n", help="Real and generated images each."),
    seed: int = typer.Option(0, "--seed"),
    truncation: float = typer.Option(1.0, "--truncation"),
    overwrite: bool = typer.Option(False, "--overwrite"),
) -> None:
    """Draw n real and n generated images (same attribute mix, size, backdrop and encoding) into a study file."""
    from jewelgan.data.archive import ArchiveError
    from jewelgan.inference import GenerateError
    from jewelgan.inference import ModelNotFound
    from jewelgan.study import StudyError, create_study

    if run is not None and model is not None:
        raise fail("give --run or --model, not both", 2)
    try:
        path = create_study(out, run if run is not None else model, data, n, seed, truncation, overwrite)
    except (StudyError, ArchiveError, ModelNotFound, GenerateError) as e:
        raise fail(str(e), 2)
    typer.echo(f"wrote {path}: {n} real + {n} generated images; invite people with `jewelgan study invite {path}`")


@study_app.command("invite")
def invite_cmd(
    study: Path = typer.Argument(..., help="The study file."),
    name: List[str] = typer.Option([], "--name", help="A participant's name or alias (repeat)."),
    n: int = typer.Option(0, "--n", help="Or this many anonymous participants."),
    base_url: str = typer.Option("http://127.0.0.1:8000", "--base-url", help="Where the study is served."),
) -> None:
    """Make a personal link for each participant (its token is their only key: one link per person)."""
    from jewelgan.study import StudyError, StudyStore

    names = list(name) + [f"participant-{k + 1}" for k in range(n)]
    if not names:
        raise fail("give --name NAME (repeatable) or --n COUNT", 2)
    try:
        store = StudyStore(study)
    except StudyError as e:
        raise fail(str(e), 2)
    for who, token in zip(names, store.invite(names)):
        typer.echo(f"{who}\t{base_url.rstrip('/')}/study/{token}")


@study_app.command("serve")
def serve_cmd(
    study: Path = typer.Argument(..., help="The study file."),
    host: str = typer.Option("127.0.0.1", "--host"),
    port: int = typer.Option(8000, "--port"),
) -> None:
    """Serve the study pages alone (no model needed). `jewelgan serve --study FILE` serves them beside the API."""
    import uvicorn

    from jewelgan.serve.observability import log_access_to_stderr
    from jewelgan.serve.study_routes import create_study_app
    from jewelgan.study import StudyError

    try:
        study_app_ = create_study_app(study)
    except StudyError as e:
        raise fail(str(e), 2)
    # a link's token is the participant's only credential: requests are logged with it redacted, never by uvicorn
    log_access_to_stderr()
    typer.echo(f"study on http://{host}:{port}/study/<token> (links: `jewelgan study invite {study}`)", err=True)
    uvicorn.run(study_app_, host=host, port=port, access_log=False, log_level="warning")


@study_app.command("results")
def results_cmd(
    study: Path = typer.Argument(..., help="The study file."),
    as_json: bool = typer.Option(False, "--json", help="Print the results as JSON."),
) -> None:
    """Fool rate with its 95 % Wilson interval, per attribute value and participant, agreement, times."""
    from jewelgan.study import StudyError, StudyStore, format_results, summarise

    try:
        store = StudyStore(study)
    except StudyError as e:
        raise fail(str(e), 2)
    res = summarise(store.rows())
    # allow_nan=False: NaN is not JSON (jq and JSON.parse refuse it); summarise says null and why instead
    typer.echo(json.dumps(res, indent=1, allow_nan=False) if as_json else format_results(res))
