"""`fortify serve` (the guarded OIP v2 service), `fortify serve-key` and `fortify review export`."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer

from fortify.cli.app import app
from fortify.cli.common import TrustCode
from fortify.cli.render import console, err_console
from fortify.threat import Threat
from fortify.types import FortifyError

review_app = typer.Typer(
    help="The service's review queue: export reviewed inputs as a dataset.", no_args_is_help=True
)
app.add_typer(review_app, name="review")


@app.command("serve")
def serve_command(
    model: Annotated[Path | None, typer.Option(help="model.safetensors to guard (with --calibrate)")] = None,
    calibrate: Annotated[str | None, typer.Option(help="dataset to calibrate the default guard on")] = None,
    guard: Annotated[Path | None, typer.Option(help="a guard bundle folder (fortify guard build)")] = None,
    config: Annotated[Path | None, typer.Option(help="serve.yaml with any setting")] = None,
    host: Annotated[str | None, typer.Option(help="address to bind (default 127.0.0.1)")] = None,
    port: Annotated[int | None, typer.Option(help="port (default 8000)")] = None,
    store: Annotated[str | None, typer.Option(help="sqlite:///file.db or postgresql://... URL")] = None,
    redis: Annotated[str | None, typer.Option(help="redis://host:port/0: limits shared by replicas")] = None,
    workers: Annotated[int | None, typer.Option(help="uvicorn worker processes")] = None,
    run_dir: Annotated[Path | None, typer.Option(help="folder for the default store and guard")] = None,
    insecure_no_auth: Annotated[
        bool, typer.Option("--insecure-no-auth", help="serve without API keys (local experiments only)")
    ] = False,
    trust_code: TrustCode = False,
) -> None:
    """Serve a guarded model over the Open Inference Protocol v2 (keys from the config or FORTIFY_KEYS).

    A guard bundle whose model is built from an import path is served only with --trust-code (or
    trust_code: true in the config); without it, one line on stderr and exit 2 before anything starts.
    """
    import uvicorn

    from fortify.service.app import load_guards
    from fortify.service.bootstrap import build_default_guard
    from fortify.service.factory import ENV, build_app
    from fortify.service.settings import load_settings
    from fortify.service.store import Store, redact

    settings = load_settings(
        config,
        model=model,
        calibrate=calibrate,
        guard=guard,
        host=host,
        port=port,
        store=store,
        redis=redis,
        workers=workers,
        run_dir=run_dir,
        insecure_no_auth=insecure_no_auth or None,
        trust_code=trust_code or None,
    )
    settings.check_startable()
    if settings.insecure_no_auth:
        err_console.print("[bold yellow]warning:[/] serving without API keys (--insecure-no-auth)")
    if settings.torch_threads is not None:
        import torch

        torch.set_num_threads(settings.torch_threads)
    if settings.guard is None:
        settings = settings.model_copy(update={"guard": build_default_guard(settings)})
    # every bundle loads before anything starts, so a refusal (untrusted code, tampering) is one line
    # and exit 2, not a server that never answers or N crashed workers
    served = build_app(settings) if settings.workers == 1 else None
    if served is None:
        load_guards(settings)
    Store(settings.store_url, sqlite_synchronous=settings.sqlite_synchronous).migrate()
    console.print(
        f"serving {settings.model_name} from {settings.guard} on http://{settings.host}:{settings.port} "
        f"(store {redact(settings.store_url)}, limits {'redis' if settings.redis else 'in process'})",
        highlight=False,
    )
    level = settings.log_level
    if served is not None:
        uvicorn.run(served, host=settings.host, port=settings.port, log_level=level)
        return
    os.environ[ENV] = settings.model_dump_json()
    uvicorn.run(
        "fortify.service.factory:app_from_env",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_level=level,
    )


@app.command("serve-key")
def serve_key_command(
    key_id: Annotated[str, typer.Option("--id", help="public name of the key (logs, metrics, store)")],
    roles: Annotated[str, typer.Option(help="comma-separated: infer, review, admin")] = "infer",
) -> None:
    """Make a new API key: prints the key once (give it to the client) and its config entry (hash only)."""
    from fortify.service.auth import hash_key, new_key
    from fortify.service.settings import KeyConfig

    names = [r.strip() for r in roles.split(",") if r.strip()]
    try:
        entry = KeyConfig(id=key_id, hash="sha256:" + "0" * 64, roles=names)  # type: ignore[arg-type]
    except ValueError as exc:
        raise FortifyError(f"invalid key: {str(exc).splitlines()[-1].strip()}") from None
    key = new_key()
    entry = entry.model_copy(update={"hash": hash_key(key)})
    console.print(f"key (shown once): {key}", highlight=False)
    console.print("add to serve.yaml under keys:", highlight=False)
    console.print(f"  - {json.dumps(entry.model_dump(exclude_none=True))}", highlight=False, soft_wrap=True)


@review_app.command("export")
def review_export_command(
    store: Annotated[str, typer.Option(help="the service's store URL (sqlite:///... or postgresql://...)")],
    to: Annotated[Path, typer.Option(help="output .safetensors file")],
) -> None:
    """Write every accepted or labelled review item as a dataset: x (N, ...) float32, y (N,) int64."""
    from fortify.service.export import export_reviewed

    count, shape = export_reviewed(store, to)
    console.print(f"wrote {count} reviewed inputs of shape {list(shape)} to {to}", highlight=False)


def evaluate_url(
    url: str, data: str, split: str, n: int, threat: Threat, seed: int, out: Path | None
) -> None:
    """``fortify evaluate --url``: red-team a served endpoint (``FORTIFY_ENDPOINT_MODEL``, default
    ``fortify``; ``FORTIFY_ENDPOINT_QUERIES`` per sample, default 500) with the key in ``FORTIFY_API_KEY``.
    A score attack (Square) when the endpoint exposes probabilities, else a decision attack (HopSkipJump).
    """
    from fortify import data as datasets
    from fortify.cli.render import results_table
    from fortify.service.client import from_url
    from fortify.service.redteam import evaluate_endpoint

    model = os.environ.get("FORTIFY_ENDPOINT_MODEL", "fortify")
    key = os.environ.get("FORTIFY_API_KEY")
    try:
        queries = int(os.environ.get("FORTIFY_ENDPOINT_QUERIES", "500"))
    except ValueError:
        raise FortifyError("FORTIFY_ENDPOINT_QUERIES must be an integer") from None
    bb = from_url(url, model=model, api_key=key)
    names = {o.get("name") for o in bb.endpoint.metadata().get("outputs", [])}
    if "probabilities" in names:
        bb.endpoint.close()
        bb = from_url(url, model=model, api_key=key, output="scores")
    x, y = datasets.load(data, split, n=n)
    try:
        result = evaluate_endpoint(bb, x, y, threat, n_queries=queries, seed=seed, dataset=data)
    finally:
        bb.endpoint.close()
    section = result.sections["endpoint"]
    console.print(results_table([result], f"endpoint {url} ({result.n_samples} samples)"))
    alerts = section["alerts"]
    fired = len(alerts) if alerts is not None else f"unknown ({section['alerts_note']})"
    console.print(
        f"endpoint: {section['requests']} requests, {section['retries']} retries, verdicts "
        f"{section['verdicts']}, clean review rate {section['clean_review_rate']}, alerts fired {fired}",
        highlight=False,
        soft_wrap=True,
    )
    if out is not None:
        result.save(str(out))
        console.print(f"wrote {out}")
