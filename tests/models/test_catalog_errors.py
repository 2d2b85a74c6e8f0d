"""The catalogs let import errors of the project's own modules surface; only a missing optional third-party
package becomes a clear "install X" message."""

from __future__ import annotations

import sys

import pytest

from recsys.errors import ConfigError
from recsys.models import catalog


@pytest.fixture
def probe_modules(tmp_path, monkeypatch):
    """Write modules into a temp folder on sys.path; the catalog reloads with them appended to MODEL_MODULES."""
    monkeypatch.syspath_prepend(str(tmp_path))
    catalog._ensure_loaded()  # the real models stay registered
    written: list[str] = []

    def add(name: str, source: str) -> None:
        (tmp_path / f"{name}.py").write_text(source)
        written.append(name)
        monkeypatch.setattr(catalog, "MODEL_MODULES", [*catalog.MODEL_MODULES, name])
        monkeypatch.setattr(catalog, "_loaded", False)
        monkeypatch.setattr(catalog, "_unavailable", {})

    yield add
    for name in written:
        sys.modules.pop(name, None)


def test_a_typo_in_a_model_modules_own_import_surfaces(probe_modules):
    probe_modules("probe_model_typo", "from recsys.models.bases import Recommender\n")  # base, not bases
    with pytest.raises(ModuleNotFoundError, match="recsys.models.bases"):
        catalog.get_model_class("als")


def test_a_broken_name_inside_the_project_is_not_unknown_model(probe_modules):
    probe_modules("probe_model_name", "from recsys.models.base import Recommendr\n")
    with pytest.raises(ImportError, match="Recommendr"):
        catalog.available()


def test_a_missing_third_party_package_names_the_install(probe_modules):
    from recsys.experiment import experiment_config_from_dict

    probe_modules("probe_model_optional", "import recsys_absent_optional_pkg\n")
    assert "als" in catalog.available("recommend")  # the other models still work
    with pytest.raises(ConfigError, match=r"unknown model 'fancy'.*package 'recsys_absent_optional_pkg' is not "
                                          r"installed \(install it: pip install recsys_absent_optional_pkg\)"):
        experiment_config_from_dict({"name": "t", "models": [{"name": "fancy"}]})


def test_the_task_catalog_surfaces_a_broken_task_module(tmp_path, monkeypatch):
    from recsys import tasks

    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "probe_task_typo.py").write_text("from recsys.tasks.bases import Task\n")
    monkeypatch.setitem(tasks.TASK_MODULES, "probe", "probe_task_typo")
    try:
        with pytest.raises(ModuleNotFoundError, match="recsys.tasks.bases"):
            tasks.get_task("probe")
        with pytest.raises(ConfigError, match="task 'nope' is unknown"):
            tasks.get_task("nope")
    finally:
        sys.modules.pop("probe_task_typo", None)
