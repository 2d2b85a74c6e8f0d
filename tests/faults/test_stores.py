"""Infrastructure faults: exit 2, at most 2 lines on stderr, no traceback, nothing half-written.

Real files and processes: a SQLite file locked by another connection, read-only and full file systems (a tmpfs
mount; skipped, saying why, where mounting is not allowed), corrupted / truncated / non-database files, an unknown
URI scheme, a tracking server and an Optuna PostgreSQL that nobody listens on.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import http_json, read_port_file, refused_port, stop_process, wait_until

from tests.faults.helpers import env, one_clean_line, recsys, runs, write_config

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def template_store(tmp_path_factory) -> Path:
    """A valid MLflow SQLite store with one finished run (copied by each test)."""
    from mlflow.tracking import MlflowClient

    path = tmp_path_factory.mktemp("template") / "mlflow.db"
    client = MlflowClient(f"sqlite:///{path}")
    exp = client.create_experiment("faults")
    run = client.create_run(exp)
    client.set_terminated(run.info.run_id)
    return path


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _mount_tmpfs(where: Path, options: str) -> None:
    where.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], check=False,
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip() or 'mount failed'}); run as root or in a "
                    "container with CAP_SYS_ADMIN to test read-only and full file systems")


def _fill(path: Path, chunk: int) -> None:
    """Write `path` in `chunk`-byte pieces until its file system is full (the write that does not fit raises)."""
    with open(path, "wb") as f, pytest.raises(OSError):
        while True:
            f.write(b"\0" * chunk)
            f.flush()


@pytest.fixture
def tmpfs(tmp_path):
    mounted: list[Path] = []

    def mount(name: str, options: str = "size=4m") -> Path:
        where = tmp_path / name
        _mount_tmpfs(where, options)
        mounted.append(where)
        return where

    yield mount
    for where in reversed(mounted):
        subprocess.run(["umount", "-l", str(where)], check=False, capture_output=True)


def _run(tmp_path: Path, uri: str, *extra: str, cwd: Path | None = None, **environ: str):
    cfg = write_config(tmp_path)
    return recsys(["--tracking-uri", uri, "run", str(cfg), *extra], cwd or tmp_path, env(None, **environ),
                  timeout=240)


def _assert_refused(proc, *words: str) -> None:
    assert proc.returncode == 2, proc.stderr[-3000:]
    one_clean_line(proc)
    low = proc.stderr.lower()
    for word in words:
        assert word.lower() in low, proc.stderr


def test_locked_sqlite_store(tmp_path: Path, template_store: Path) -> None:
    db = tmp_path / "mlflow.db"
    shutil.copy(template_store, db)
    holder = sqlite3.connect(db)
    holder.execute("BEGIN EXCLUSIVE")  # another process mid-write, holding the lock
    try:
        proc = _run(tmp_path, f"sqlite:///{db}")
    finally:
        holder.rollback()
        holder.close()
    _assert_refused(proc, "locked", str(db), "rerun")
    assert len(runs(f"sqlite:///{db}")) == 1  # nothing was written once the lock was gone


@pytest.mark.parametrize("damage", ["garbage", "text", "truncated"])
def test_corrupted_sqlite_store(tmp_path: Path, template_store: Path, damage: str) -> None:
    db = tmp_path / "mlflow.db"
    if damage == "garbage":
        db.write_bytes(os.urandom(64 * 1024))
    elif damage == "text":
        db.write_text("name,value\nthis is a csv file, not a database\n")
    else:
        data = template_store.read_bytes()
        db.write_bytes(data[: len(data) // 3])
    before = _digest(db)
    proc = _run(tmp_path, f"sqlite:///{db}")
    _assert_refused(proc, "not a valid sqlite database", "backup")
    assert _digest(db) == before, "the damaged file was modified"
    assert not (tmp_path / "mlruns").exists(), "artifacts were written for a run that cannot be tracked"


def test_read_only_directory(tmp_path: Path, template_store: Path, tmpfs) -> None:
    ro = tmpfs("ro")
    shutil.copy(template_store, ro / "mlflow.db")
    subprocess.run(["mount", "-o", "remount,ro", str(ro)], check=True)
    before = _digest(ro / "mlflow.db")
    proc = _run(tmp_path, f"sqlite:///{ro / 'mlflow.db'}")
    _assert_refused(proc, "read-only")
    assert _digest(ro / "mlflow.db") == before
    assert sorted(p.name for p in ro.iterdir()) == ["mlflow.db"]


def test_read_only_directory_for_a_new_store(tmp_path: Path, tmpfs) -> None:
    ro = tmpfs("ro-empty", "size=1m,ro")
    proc = _run(tmp_path, f"sqlite:///{ro / 'mlflow.db'}")
    _assert_refused(proc, "read-only")
    assert list(ro.iterdir()) == []


def test_full_disk_for_a_new_store(tmp_path: Path, tmpfs) -> None:
    full = tmpfs("full", "size=512k")
    _fill(full / "filler", 65536)
    proc = _run(tmp_path, f"sqlite:///{full / 'mlflow.db'}")
    _assert_refused(proc, "space")
    assert sorted(p.name for p in full.iterdir()) == ["filler"], "a half-created store was left behind"


def test_full_disk_while_logging_artifacts(tmp_path: Path, tmpfs) -> None:
    """The artifact directory fills up mid-run: the runs end FAILED (none RUNNING), one line, exit 2."""
    full = tmpfs("full-artifacts", "size=256k")
    _fill(full / "filler", 16384)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    proc = _run(tmp_path, uri, cwd=full)  # default artifact root ./mlruns lies on the full tmpfs
    _assert_refused(proc, "space")
    statuses = [r.info.status for r in runs(uri)]
    assert statuses and "RUNNING" not in statuses and "FAILED" in statuses, statuses


def test_unknown_uri_scheme(tmp_path: Path) -> None:
    proc = _run(tmp_path, "sqllite:///mlflow.db")
    _assert_refused(proc, "unknown uri scheme", "sqllite")
    assert list(tmp_path.glob("*.db")) == []


def test_unreachable_tracking_server(tmp_path: Path) -> None:
    with refused_port() as port:
        proc = _run(tmp_path, f"http://127.0.0.1:{port}")
    _assert_refused(proc, "cannot reach", str(port))


def test_optuna_storage_down_masks_the_password(tmp_path: Path) -> None:
    cfg = write_config(tmp_path)
    with refused_port() as port:
        storage = f"postgresql://tuner:s3cret-pw@127.0.0.1:{port}/studies"
        proc = recsys(["tune", str(cfg), "--model", "als", "--storage", storage], tmp_path,
                      env(f"sqlite:///{tmp_path / 'mlflow.db'}"))
    _assert_refused(proc, "optuna storage", "cannot reach", "***")
    assert "s3cret-pw" not in proc.stderr + proc.stdout
    assert runs(f"sqlite:///{tmp_path / 'mlflow.db'}") == [], "runs were started before the storage was checked"


def test_optuna_storage_read_only(tmp_path: Path, tmpfs) -> None:
    import optuna

    ro = tmpfs("optuna-ro")
    optuna.create_study(storage=f"sqlite:///{tmp_path / 'optuna.db'}", study_name="other")
    shutil.copy(tmp_path / "optuna.db", ro / "optuna.db")  # (the study's engine keeps its own file open)
    subprocess.run(["mount", "-o", "remount,ro", str(ro)], check=True)
    cfg = write_config(tmp_path)
    proc = recsys(["tune", str(cfg), "--model", "als", "--storage", f"sqlite:///{ro / 'optuna.db'}"], tmp_path,
                  env(f"sqlite:///{tmp_path / 'mlflow.db'}"))
    _assert_refused(proc, "optuna storage", "read-only")
    assert runs(f"sqlite:///{tmp_path / 'mlflow.db'}") == []


def test_optuna_storage_corrupted(tmp_path: Path) -> None:
    bad = tmp_path / "optuna.db"
    bad.write_bytes(os.urandom(8192))
    cfg = write_config(tmp_path)
    proc = recsys(["tune", str(cfg), "--model", "als", "--storage", f"sqlite:///{bad}"], tmp_path,
                  env(f"sqlite:///{tmp_path / 'mlflow.db'}"))
    _assert_refused(proc, "optuna storage", "not a valid sqlite database")


def test_debug_flag_shows_the_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "mlflow.db"
    bad.write_bytes(os.urandom(4096))
    proc = _run(tmp_path, f"sqlite:///{bad}", RECSYS_DEBUG="1")
    assert proc.returncode != 0 and "Traceback" in proc.stderr


def test_two_runs_at_once_on_a_fresh_sqlite_store(tmp_path: Path) -> None:
    """Both create the schema of one new mlflow.db at the same moment: the file lock lets one migrate, then
    the other finds it ready; both finish and each run is FINISHED."""
    uri = f"sqlite:///{tmp_path / 'fresh' / 'mlflow.db'}"
    (tmp_path / "fresh").mkdir()
    cfg = write_config(tmp_path, models=[{"name": "popularity"}], registry={"enabled": False})
    procs = [subprocess.Popen([sys.executable, "-m", "recsys.cli", "--tracking-uri", uri, "run", str(cfg)],
                              cwd=tmp_path, env=env(None), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1][-2000:] for o in outs]
    statuses = [r.info.status for r in runs(uri)]
    assert len(statuses) == 4 and set(statuses) == {"FINISHED"}, statuses  # 2 parents + 2 model runs


READERS = {  # the commands that only use what runs registered: they must not create a store to read nothing from
    "serve": lambda tmp: ["serve", "--models", "faults-model", "--port", "0"],
    "score": lambda tmp: ["score", "--model", "models:/faults-model@champion", "--output", str(tmp / "out.parquet")],
}


@pytest.mark.parametrize("command", sorted(READERS))
@pytest.mark.parametrize("fault", ["missing", "missing-directory", "not-a-database", "unknown-scheme",
                                   "unreachable-server"])
def test_serve_and_score_refuse_an_unusable_store(tmp_path: Path, command: str, fault: str) -> None:
    """Before listening or downloading: one line naming the store and the fix, exit 2, and nothing created
    (no empty store, no directory, no output); before, `serve` logged a traceback and served nothing, `score`
    hung on an unreachable server and created a fresh store for a missing file."""
    db = tmp_path / "mlflow.db"
    if fault == "not-a-database":
        db.write_text("name,value\nthis is a csv file, not a database\n")
    with refused_port() as port:
        uri = {"missing": f"sqlite:///{db}", "missing-directory": f"sqlite:///{tmp_path / 'no' / 'such' / 'mlflow.db'}",
               "not-a-database": f"sqlite:///{db}", "unknown-scheme": f"sqllite:///{db}",
               "unreachable-server": f"http://127.0.0.1:{port}"}[fault]
        before = sorted(p.name for p in tmp_path.iterdir())
        proc = recsys(["--tracking-uri", uri, *READERS[command](tmp_path)], tmp_path, env(None), timeout=120)
    words = {"missing": ["no store", str(db), "recsys run"], "missing-directory": ["no store", "recsys run"],
             "not-a-database": ["not a valid sqlite database"], "unknown-scheme": ["unknown uri scheme", "sqllite"],
             "unreachable-server": ["cannot reach", str(port)]}[fault]
    _assert_refused(proc, *words)
    assert sorted(p.name for p in tmp_path.iterdir()) == before, "the refused command created files"


@pytest.mark.parametrize("command", sorted(READERS))
def test_serve_and_score_refuse_a_missing_store_before_loading_mlflow(tmp_path: Path, command: str) -> None:
    """The store is checked first: the refusal comes before mlflow, FastAPI or a model module is imported (before,
    `serve` imported the whole service and `score` the model store to say the file does not exist)."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    probe = ("import json, sys\nfrom recsys.cli import main\n"
             f"code = main({['--tracking-uri', uri, *READERS[command](tmp_path)]!r})\n"
             "heavy = sorted(m for m in ('mlflow', 'fastapi', 'uvicorn', 'recsys.models.base') if m in sys.modules)\n"
             "print(json.dumps({'code': code, 'heavy': heavy}))")
    proc = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=env(None), capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out == {"code": 2, "heavy": []}, (out, proc.stderr[-2000:])
    assert "no store" in proc.stderr and not (tmp_path / "mlflow.db").exists()


def test_serve_reads_a_store_on_a_read_only_mount(tmp_path: Path, template_store: Path, tmpfs) -> None:
    """The service only reads: a store on a read-only file system is served from (`recsys run` refuses it, see
    test_read_only_directory), and the store is not modified."""
    ro = tmpfs("ro-serve")
    shutil.copy(template_store, ro / "mlflow.db")
    subprocess.run(["mount", "-o", "remount,ro", str(ro)], check=True)
    before = _digest(ro / "mlflow.db")
    port_file = tmp_path / "port"
    proc = subprocess.Popen([sys.executable, "-m", "recsys.cli", "--tracking-uri", f"sqlite:///{ro / 'mlflow.db'}",
                             "serve", "--models", "faults-model", "--port", "0", "--port-file", str(port_file),
                             "--poll-interval", "0"], cwd=tmp_path, env=env(None), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        port = read_port_file(port_file, "recsys serve on a read-only store", proc)
        # /models answers at once; wait for the first load to finish (before, the test raced it)
        wait_until(lambda: http_json(port, "/models")[1].get("loaded"), "recsys serve loading its models", proc)
        status, body = http_json(port, "/models")
    finally:
        stop_process(proc)
    assert status == 200, body
    assert body["missing"] == ["faults-model"], body  # no version holds @champion in this store
    assert _digest(ro / "mlflow.db") == before
