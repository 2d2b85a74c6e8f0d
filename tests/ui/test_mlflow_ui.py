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


def _interval(cell: str) -> tuple[float, float, float]:
    """'0.1299 [0.1199, 0.1395]' (bold markers dropped) -> (0.1299, 0.1199, 0.1395)."""
    value, rest = cell.replace("*", "").split("[", 1)
    low, high = rest.rstrip("] ").split(",")
    return float(value), float(low), float(high)


def test_ui_shows_the_comparison_in_the_parent_description_and_report_html_with_its_ci_column(filled_store):
    """What a data scientist sees: the parent run's description is the comparison table (winner in bold, each
    model's NDCG@10 with its interval, 4 significant digits), and report.html renders in the artifact view with
    the CI column. The displayed numbers are checked against the metrics MLflow stored for each model run."""
    from mlflow.tracking import MlflowClient
    from playwright.sync_api import sync_playwright

    client = MlflowClient(filled_store)
    exp = client.get_experiment_by_name("ui-check")
    parent = client.search_runs([exp.experiment_id], "tags.role = 'experiment'")[0]
    models = {r.data.tags["label"]: r for r in client.search_runs([exp.experiment_id], "tags.role = 'model'")}
    selected = parent.data.tags["best_model"]
    header = "ndcg_at_10 [95% CI]"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1800, "height": 1000})
            page.goto(f"{filled_store}/#/experiments/{exp.experiment_id}/runs/{parent.info.run_id}",
                      timeout=120_000)
            table = page.locator("table", has=page.get_by_text(header, exact=True)).first
            table.wait_for(timeout=120_000)
            heads = table.locator("th").all_inner_texts()
            assert heads[0] == "model" and heads[1] == header and "tie" in heads
            rows = {}
            for tr in table.locator("tbody tr").all():
                cells = tr.locator("td").all_inner_texts()
                rows[cells[0]] = cells
            assert set(rows) == set(models)
            # the winner is bold (Markdown ** rendered as <strong>), the others are not
            assert table.locator("tbody tr", has_text=selected).first.locator("td strong").count() >= 1
            for label, run in models.items():
                m = run.data.metrics
                value, low, high = _interval(rows[label][1])
                for shown, stored in ((value, m["ndcg_at_10"]), (low, m["ndcg_at_10_ci_low"]),
                                      (high, m["ndcg_at_10_ci_high"])):
                    assert shown == pytest.approx(stored, rel=5e-4)  # 4 significant digits
                assert low <= value <= high
                if label != selected:
                    assert table.locator("tbody tr", has_text=label).first.locator("td strong").count() == 0

            page.goto(f"{filled_store}/#/experiments/{exp.experiment_id}/runs/{parent.info.run_id}/artifacts/"
                      "report.html", timeout=120_000)
            report = page.frame_locator("iframe").first
            report.get_by_text(header, exact=True).first.wait_for(timeout=120_000)
            ctable = report.locator("table", has=report.get_by_text(header, exact=True)).first
            ci_col = ctable.locator("th").all_inner_texts().index(header)
            shown = {}
            for tr in ctable.locator("tbody tr").all():
                cells = tr.locator("td").all_inner_texts()
                shown[cells[0]] = _interval(cells[ci_col])
            assert set(shown) == set(models)
            for label, (_value, low, high) in shown.items():
                assert (low, high) == pytest.approx((models[label].data.metrics["ndcg_at_10_ci_low"],
                                                     models[label].data.metrics["ndcg_at_10_ci_high"]), rel=5e-4)
            assert report.get_by_text("Verdict:", exact=False).count() >= 1
        finally:
            browser.close()
