"""Drive the real MLflow UI: a store this project filled, `mlflow server` on loopback, headless Chromium."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import urllib.request

import pytest
from conftest import start_on_free_port, stop_process

pytestmark = pytest.mark.slow  # end-to-end: `pytest -m "not slow"` skips it

CHROMIUM = os.environ.get("RECSYS_CHROMIUM", "/usr/bin/chromium")
def http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as r:
        return r.status == 200


ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]


@pytest.fixture(scope="module")
def filled_store(tmp_path_factory):
    if not (shutil.which(CHROMIUM) or os.path.exists(CHROMIUM)):
        pytest.skip(f"Chromium not found at {CHROMIUM}; install Debian's chromium (apt-get install chromium)")
    pytest.importorskip("playwright")
    tmp = tmp_path_factory.mktemp("ui")
    db = tmp / "mlflow.db"
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{db}", "RECSYS_PROGRESS": "0"}
    env.pop("MLFLOW_RUN_ID", None)
    cfg = tmp / "ui.yaml"
    cfg.write_text(
        "name: ui-check\nseed: 3\n"
        "data: {synthetic: {n_users: 300, n_items: 120, n_categories: 5}}\n"
        "models: [{name: random}, {name: popularity}, {name: item_knn, params: {k_neighbors: 20}},"
        " {name: als, params: {factors: 8, iterations: 5}}]\n"
        "registry: {enabled: false}\n")
    subprocess.run([sys.executable, "-m", "recsys.cli", "--log-level", "WARNING", "run", str(cfg)], cwd=tmp,
                   env=env, check=True, capture_output=True, timeout=300)
    def launch(port: int) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "mlflow", "server", "--backend-store-uri", f"sqlite:///{db}",
                                 "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
                                cwd=tmp, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)

    server, port = start_on_free_port(launch, lambda p: http_ok(f"http://127.0.0.1:{p}/health"), "mlflow server",
                                      seconds=180, interval=0.5)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_process(server)


def test_ui_shows_model_runs_and_their_ndcg(filled_store):
    from mlflow.tracking import MlflowClient
    from playwright.sync_api import sync_playwright

    client = MlflowClient(filled_store)
    exp = client.get_experiment_by_name("ui-check")
    children = client.search_runs([exp.experiment_id], "tags.role = 'model'")
    assert len(children) == 4
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1800, "height": 1000})
            page.goto(f"{filled_store}/#/experiments/{exp.experiment_id}/runs", timeout=120_000)
            page.get_by_role("link", name="ui-check", exact=True).last.wait_for(timeout=120_000)
            page.locator("button[data-component-id*='runnamecellrenderer']").first.click()
            for run in children:
                name = run.data.tags["mlflow.runName"]
                page.get_by_role("link", name=name, exact=True).first.wait_for(timeout=60_000)
            for run in children:
                page.goto(f"{filled_store}/#/experiments/{exp.experiment_id}/runs/{run.info.run_id}",
                          timeout=120_000)
                page.get_by_text("ndcg_at_10", exact=True).first.wait_for(timeout=60_000)
                body = page.inner_text("body")
                assert run.data.tags["mlflow.runName"] in body
                shown = body.split("ndcg_at_10", 1)[1].split()[0]
                assert float(shown) == pytest.approx(run.data.metrics["ndcg_at_10"], abs=1e-6)
        finally:
            browser.close()
