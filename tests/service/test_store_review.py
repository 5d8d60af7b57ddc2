"""The store (SQLite WAL, real PostgreSQL, Alembic) and the review queue through to the exported dataset."""

from __future__ import annotations

import base64
import uuid

import pytest
import sqlalchemy as sa
import torch
from fastapi.testclient import TestClient
from safetensors import safe_open

from fortify.cli.main import main
from fortify.service.app import create_app
from fortify.service.store import Store
from tests.service.conftest import headers, infer_body, need, port_open

PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


@pytest.fixture
def review_inputs(guard, synthetic):
    """Six clean test images the guard sends to REVIEW."""
    x, _ = synthetic
    rows = [i for i, v in enumerate(guard(x)) if v.status.value == "REVIEW"][:6]
    assert len(rows) == 6, "the guard fixture should review ~5% of 256 clean images"
    return x[rows]


@pytest.fixture
def pg_url():
    need(port_open(5432), "no PostgreSQL on 127.0.0.1:5432")
    name = f"fortify_test_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _review_flow(client: TestClient, x: torch.Tensor, store_url: str, tmp_path) -> None:
    response = client.post("/v2/models/fortify/infer", json=infer_body(x, id="to-review"), headers=headers())
    assert response.status_code == 200
    assert response.json()["parameters"] == {"status": "REVIEW", "accepted": 0, "review": 6, "rejected": 0}
    ids = {o["name"]: o for o in response.json()["outputs"]}["event_id"]["data"]

    page = client.get("/review", params={"limit": 4}, headers=headers("review")).json()
    assert [i["id"] for i in page["items"]] == ids[:4] and page["next_after"] == ids[3]
    rest = client.get("/review", params={"after": page["next_after"]}, headers=headers("review")).json()
    assert [i["id"] for i in rest["items"]] == ids[4:] and rest["next_after"] is None
    assert client.get("/review", params={"key": "nobody"}, headers=headers("review")).json()["items"] == []

    item = client.get(f"/review/{ids[0]}", headers=headers("review")).json()
    assert item["status"] == "REVIEW" and item["review_state"] == "pending" and item["reasons"]
    assert torch.allclose(torch.tensor(item["input"]["data"]).reshape(1, 8, 8), x[0])
    assert base64.b64decode(item["image"].split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"

    decide = lambda i, **body: client.post(f"/review/{ids[i]}", json=body, headers=headers("review"))  # noqa: E731
    assert decide(0, action="accept").json()["review_label"] == item["label"]
    assert decide(1, action="label", label=2, note="a shirt").json()["review_state"] == "labelled"
    assert decide(2, action="reject").json()["review_label"] is None
    assert decide(0, action="reject").status_code == 409
    assert decide(3, action="label", label=4).status_code == 400
    assert decide(3, action="label").status_code == 400
    assert client.post(f"/review/{ids[3]}", json={"action": "accept"}, headers=headers()).status_code == 403
    assert client.get("/review/999999", headers=headers("review")).status_code == 404
    assert (
        len(client.get("/review", params={"state": "reviewed"}, headers=headers("review")).json()["items"])
        == 3
    )

    out = tmp_path / "reviewed.safetensors"
    assert main(["review", "export", "--store", store_url, "--to", str(out)]) == 0
    with safe_open(str(out), "pt") as f:
        assert torch.equal(f.get_tensor("x"), x[:2]) and f.get_tensor("y").tolist() == [item["label"], 2]
        assert f.get_tensor("event_id").tolist() == ids[:2] and f.metadata()["count"] == "2"


def test_review_queue_to_exported_dataset_on_sqlite(guard, settings_for, review_inputs, tmp_path):
    settings = settings_for()
    with TestClient(create_app(settings, guard=guard)) as client:
        _review_flow(client, review_inputs, settings.store_url, tmp_path)
        metrics = client.get("/metrics").text
    assert "fortify_review_queue_depth 3.0" in metrics
    engine = sa.create_engine(settings.store_url)
    with engine.connect() as conn:
        assert conn.execute(sa.text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar() == "0001"


def test_review_queue_on_postgresql_for_real(guard, settings_for, review_inputs, tmp_path, pg_url):
    settings = settings_for(store=pg_url)
    with TestClient(create_app(settings, guard=guard)) as client:
        _review_flow(client, review_inputs, pg_url, tmp_path)
    store = Store(pg_url)
    assert store.engine.dialect.name == "postgresql" and store.count_events() == 6
    store.migrate()  # idempotent at head
    store.close()


def test_export_refuses_an_empty_queue(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    assert main(["review", "export", "--store", url, "--to", str(tmp_path / "x.safetensors")]) == 2
    assert "no accepted or labelled review items" in capsys.readouterr().err
    assert not (tmp_path / "x.safetensors").exists()


def test_bad_store_urls_are_one_line_errors(tmp_path):
    from fortify.types import FortifyError

    with pytest.raises(FortifyError, match="store URL must be"):
        Store("mysql://root@localhost/x")
    with pytest.raises(FortifyError, match="cannot reach the store") as err:
        Store("postgresql://nobody:secret@127.0.0.1:1/none").migrate()
    assert "secret" not in str(err.value) and "\n" not in str(err.value)


def test_a_lost_store_is_503_not_a_silent_answer(guard, settings_for, synthetic, pg_url):
    settings = settings_for(store=pg_url)
    body = infer_body(synthetic[0][:1])
    with TestClient(create_app(settings, guard=guard)) as client:
        assert client.post("/v2/models/fortify/infer", json=body, headers=headers()).status_code == 200
        name = pg_url.rsplit("/", 1)[1]
        admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()
        response = client.post("/v2/models/fortify/infer", json=body, headers=headers())
    assert response.status_code == 503 and response.headers["retry-after"] == "1"
    assert response.json() == {"error": "the store is unavailable; the verdict was not recorded"}
