#!/usr/bin/env python
"""Mutation testing (mutmut 3) over the modules where a silent change would corrupt results.

    python scripts/mutation.py                      # every target, then rewrite docs/testing.md
    python scripts/mutation.py splits metrics       # some targets (the others keep their last results)
    python scripts/mutation.py --report-only        # rebuild docs/testing.md from the saved results

Each target mutates a few files (or only some functions of a file) and runs only the fast tests that guard them,
in its own scratch copy under build/mutation/<target>/ (mutmut 3 reads its settings from the pyproject.toml of the
folder it runs in, so each target gets its own). Results are saved as build/mutation/<target>.json and
docs/testing.md is regenerated from all saved results: the score per target, the surviving mutants with their
diffs, and the equivalent mutants listed in scripts/mutation_equivalent.toml (and scripts/mutation_equivalent/*.toml)
with the reason each cannot be killed. The score counts killed (and timed-out) mutants over all mutants minus
the listed equivalent ones.

Slow (minutes per target on 2 cores): it is not part of the test suite or of .ci/run.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BUILD = REPO / "build" / "mutation"
DOC = REPO / "docs" / "testing.md"
EQUIVALENT = REPO / "scripts" / "mutation_equivalent.toml"
EQUIVALENT_DIR = REPO / "scripts" / "mutation_equivalent"  # one file per target, same format
THRESHOLD = 0.85
HARNESS = 2  # results of runs before 2 (mutants forked from mutmut's main process, tight timeouts): timeouts re-run
PER_TEST_TIMEOUT = 90  # wall seconds a test may take under a mutant (~3 s alone at most, 30+ s on 2 busy cores)
MUTMUT = str(Path(sys.executable).with_name("mutmut"))


@dataclass
class Target:
    """Files (and optionally only some of their functions) to mutate, and the tests that must catch it."""

    name: str
    what: str
    files: list[str]
    tests: list[str]
    functions: list[str] = field(default_factory=list)  # mutmut names (module.x_func / module.xǁClassǁmethod)
    deselect: list[str] = field(default_factory=list)  # slow tests in the selected files (a subprocess, a full run)


TARGETS = [
    Target("metrics", "ranking metrics (precision, recall, NDCG, MAP, MRR, hit rate, novelty, diversity, coverage)",
           ["recsys/evaluation/metrics.py"], ["tests/evaluation/test_metrics.py"]),
    Target("ranking", "ranking kernel: top-K with exact ties, seen mask, cold-start fallback, popularity",
           ["recsys/models/base.py", "recsys/models/baselines.py", "recsys/models/ranking.py",
            "recsys/models/_implicit.py"],
           ["tests/evaluation/test_recommend_evaluator.py", "tests/evaluation/test_ranking_oracles.py",
            "tests/evaluation/test_ranking_edges.py", "tests/models/test_ranking_kernel.py",
            "tests/models/test_recommend_base.py", "tests/evaluation/test_metrics.py::test_topk_breaks_ties_by_index",
            "tests/evaluation/test_metrics.py::test_topk_k_zero_is_empty"],
           ["recsys.models.base.x_topk*",
            "recsys.models.base.xǁRecommenderǁfallback*", "recsys.models.base.xǁRecommenderǁrecommend__*",
            "recsys.models.base.xǁRecommenderǁscore__*", "recsys.models.baselines.xǁPopularityRecommenderǁ_fit*",
            "recsys.models.baselines.xǁPopularityRecommenderǁ_order*",
            "recsys.models.baselines.xǁPopularityRecommenderǁrecommend__*",
            "recsys.models.ranking.x_topk*", "recsys.models.ranking.x__select*", "recsys.models.ranking.x__repair*",
            "recsys.models.ranking.x_exclude_inplace*", "recsys.models.ranking.x_static_order*",
            "recsys.models.ranking.x_factor_topk*", "recsys.models.ranking.x_exact_dots*",
            "recsys.models.ranking.x__take_best*", "recsys.models.ranking.x__heap_safe*",
            "recsys.models.base.xǁRecommenderǁ_check_users*",
            "recsys.models._implicit.xǁFactorRecommenderǁrecommend*"],
           deselect=["tests/models/test_ranking_kernel.py::"
                     "test_importing_the_implicit_models_limits_no_thread_pool_process_wide"]),
    Target("evaluator", "the evaluator: target building (seen items, unknown users/items), batches, list table",
           ["recsys/evaluation/recommend.py"],
           ["tests/evaluation/test_recommend_evaluator.py", "tests/evaluation/test_ranking_oracles.py",
            "tests/evaluation/test_ranking_edges.py", "tests/evaluation/test_build_target.py",
            "tests/evaluation/test_evaluator_batches.py"],
           ["recsys.evaluation.recommend.x_build_target*", "recsys.evaluation.recommend.x_evaluate_recommender*",
            "recsys.evaluation.recommend.x_score_lists*", "recsys.evaluation.recommend.x_batch_rows*"]),
    Target("splits", "temporal / leave-last-N / random splits, cutoff, validation carve-out, leakage audit",
           ["recsys/data/split.py"], ["tests/data/test_split.py", "tests/data/test_split_oracles.py",
                                      "tests/data/test_boundary_ties.py", "tests/data/test_folds.py",
                                      "tests/data/test_vectorised_path.py::test_split_fingerprint_is_the_sorted_frame_hash"],
           ["recsys.data.split.x_split_interactions*", "recsys.data.split.x_leakage_audit*",
            "recsys.data.split.x_validation_split*", "recsys.data.split.xǁSplitǁfingerprint*"]),
    Target("folds", "repeated splits (split.folds): rolling temporal origins, user-disjoint folds",
           ["recsys/data/split.py"], ["tests/data/test_folds.py", "tests/data/test_split_oracles.py",
                                      "tests/data/test_folds_oracles.py"],
           ["recsys.data.split.x_split_folds*"]),
    Target("validation", "data validation and timestamp conversion, implicit weights, minimum counts",
           ["recsys/data/validation.py", "recsys/data/timestamps.py"],
           ["tests/data/test_validation.py", "tests/data/test_timestamps.py", "tests/data/test_options.py",
            "tests/data/test_validation_oracles.py", "tests/data/test_timestamps_edges.py",
            "tests/data/test_validation_messages.py", "tests/data/test_row_keys_oracles.py",
            "tests/data/test_timestamp_conversion.py", "tests/data/test_event_weights.py"],
           deselect=["tests/data/test_options.py::test_real_cli_process_exits_2_with_one_error_line"]),
    Target("promotion", "the promotion decision: uplift, guardrails, significance gate, first-champion checks",
           ["recsys/evaluation/promotion.py"],
           ["tests/registry/test_promotion_decision.py", "tests/registry/test_promotion_checks.py"],
           ["recsys.evaluation.promotion.x_compare*", "recsys.evaluation.promotion.x_first_champion_checks*",
            "recsys.evaluation.promotion.x_same_evaluation_data*", "recsys.evaluation.promotion.x_summarize*"]),
    Target("significance", "paired tests (Wilcoxon, t-test, Holm, effect size, t interval) and their frame alignment",
           ["recsys/evaluation/significance.py", "recsys/evaluation/statistics.py"],
           ["tests/registry/test_paired_significance.py", "tests/evaluation/test_statistics.py",
            "tests/evaluation/test_statistics_edges.py"],
           ["recsys.evaluation.significance.*", "recsys.evaluation.statistics.x_wilcoxon*",
            "recsys.evaluation.statistics.x_ttest*", "recsys.evaluation.statistics.x_paired_p_value*",
            "recsys.evaluation.statistics.x_holm*", "recsys.evaluation.statistics.x_cohens_d*",
            "recsys.evaluation.statistics.x_t_interval*", "recsys.evaluation.statistics.x__check_alternative*"]),
    Target("tuning_selection",
           "tuning selection: best trial / Pareto pick by rule, refit only if it beats the defaults",
           ["recsys/tuning/report.py", "recsys/tuning/tuner.py"],
           ["tests/tuning/test_select_trial.py", "tests/tuning/test_tuning_selection.py::test_beats_rule"],
           ["recsys.tuning.report.x_select_trial*", "recsys.tuning.tuner.x_beats*"]),
]
BY_NAME = {t.name: t for t in TARGETS}

# mutmut.stats.status_by_exit_code (not imported: importing mutmut loads its config from the current folder)
STATUS = {1: "killed", 3: "killed", 0: "survived", 5: "no tests", 2: "interrupted", None: "not checked",
          33: "no tests", 34: "skipped", 35: "suspicious", 36: "timeout", 37: "caught by type check", -24: "timeout",
          24: "timeout", 152: "timeout", 255: "timeout", -11: "segfault", -9: "segfault"}


def _pyproject(target: Target) -> str:
    base = tomllib.loads((REPO / "pyproject.toml").read_text())
    ini = base["tool"]["pytest"]["ini_options"]

    def arr(values: list[str]) -> str:
        return "[" + ", ".join(json.dumps(v) for v in values) + "]"

    return "\n".join([
        "[tool.pytest.ini_options]",
        f"testpaths = {arr(ini.get('testpaths', ['tests']))}",
        f"markers = {arr(ini.get('markers', []))}",
        "",
        "[tool.mutmut]",
        'source_paths = ["recsys"]',
        f"only_mutate = {arr(target.files)}",
        f"pytest_add_cli_args_test_selection = {arr(target.tests)}",
        # the fast tests only: a slow end-to-end test would run once per mutant of every function it touches
        # --timeout: a mutant that turns a loop infinite fails its test after PER_TEST_TIMEOUT s (pytest exit 1:
        # killed, the test did fail), never waiting for mutmut's own timeout
        "pytest_add_cli_args = " + arr(["-p", "no:randomly", "-p", "no:cacheprovider", "-q", "-x", "-m", "not slow",
                                        f"--timeout={PER_TEST_TIMEOUT}",
                                        *[f"--deselect={t}" for t in target.deselect]]),
        "use_git_change_detection = false",
        # mutmut's own limit, (estimated time of the mutant's tests + constant) x multiplier of wall time, is only
        # a backstop: with the tight default a mutant whose tests were merely slowed down (2 cores shared, the run
        # at nice 10) was stopped and counted as a "timeout" = killed, whatever its tests would have said
        "timeout_multiplier = 10.0",
        f"timeout_constant = {PER_TEST_TIMEOUT}.0",
        # mutants run in children of a fork server that never ran a test: forked straight from mutmut's main
        # process (which ran every test once to map tests to functions), a child hangs in its first OpenMP
        # parallel region (GNU libgomp's thread pool does not survive fork(); FAISS' top-K selection is one), so
        # the mutant ended as a "timeout" whatever the tests would have said
        'process_isolation = "forkserver"',
        'forkserver_warmup = "collect"',
        "",
    ])


def _prepare(target: Target) -> Path:
    """A scratch copy of the code and tests; an earlier `mutants/` folder is kept, so mutmut only re-checks the
    mutants of functions (or tests) that changed since (its own cache invalidation)."""
    work = BUILD / target.name
    work.mkdir(parents=True, exist_ok=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for folder in ("recsys", "tests", "configs"):
        if (work / folder).exists():
            shutil.rmtree(work / folder)
        shutil.copytree(REPO / folder, work / folder, ignore=ignore)
    (work / "pyproject.toml").write_text(_pyproject(target))
    return work


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(RECSYS_PROGRESS="0", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PYTHONHASHSEED="0")
    return env


def run_target(target: Target, max_children: int, survivors_only: bool = False, collect_only: bool = False,
               also: list[str] | None = None, skip_unchecked: bool = False) -> dict:
    previous = BUILD / f"{target.name}.json"
    names = list(target.functions)
    old: dict[str, dict] = {}
    if survivors_only and previous.exists():
        old = {m["name"]: m for m in json.loads(previous.read_text())["mutants"]}
        # a "timeout" of a run before the fork-server / per-test-timeout harness is no verdict: run it again
        fresh = json.loads(previous.read_text()).get("harness") == HARNESS
        names = [n for n, m in old.items()
                 if (m["status"] not in ("killed", "timeout") or (m["status"] == "timeout" and not fresh))
                 and not (skip_unchecked and m["status"] == "not checked")]
        names += [n for n in old if also and any(_glob(n, p) for p in also) and n not in names]
        if not names:
            return json.loads(previous.read_text())
    started = datetime.now(UTC)
    if collect_only:  # an interrupted or earlier run: read the verdicts mutmut already recorded
        work = BUILD / target.name
        proc = subprocess.CompletedProcess([], 0, "", "")
    else:
        work = _prepare(target)
        cmd = [MUTMUT, "run", "--max-children", str(max_children), *names]
        print(f"== {target.name}: {' '.join(cmd[1:])} (in {work})", flush=True)
        proc = subprocess.run(cmd, cwd=work, env=_env(), text=True, capture_output=True, check=False)
        (BUILD / f"{target.name}.log").write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr)[-3000:]
        raise SystemExit(f"mutmut failed for target {target.name!r} (rc={proc.returncode}):\n{tail}")
    mutants = []
    sources: dict[str, dict[str, str]] = {}
    for file in target.files:
        sources[file] = _functions(work / "mutants" / file)
        meta = json.loads((work / "mutants" / f"{file}.meta").read_text())
        for name, code in sorted(meta["exit_code_by_key"].items(), key=lambda kv: _natural(kv[0])):
            if target.functions and not any(_glob(name, pat) for pat in target.functions):
                continue
            if old and name not in names and name in old and not (also and any(_glob(name, p) for p in also)):
                # not re-run this time: keep the earlier verdict
                mutants.append(old[name])
                continue
            status = STATUS.get(code, "suspicious")
            diff = _mutant_diff(sources, file, name) if status != "killed" else ""
            mutants.append({"name": name, "file": file, "status": status, "diff": diff})
    result = {"target": target.name, "what": target.what, "files": target.files, "tests": target.tests,
              "harness": HARNESS, "functions": target.functions, "started": started.isoformat(timespec="seconds"),
              "seconds": round((datetime.now(UTC) - started).total_seconds()), "mutants": mutants}
    (BUILD / f"{target.name}.json").write_text(json.dumps(result, indent=1))
    return result


def _functions(path: Path) -> dict[str, str]:
    """Source of every function in mutmut's mutated copy of a file (originals are `<name>__mutmut_orig`)."""
    import ast

    text = path.read_text()
    lines = text.splitlines()
    return {node.name: "\n".join(lines[node.lineno - 1:node.end_lineno]) for node in ast.walk(ast.parse(text))
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))}


def _mutant_diff(sources: dict[str, dict[str, str]], file: str, name: str) -> str:
    """The changed lines of one mutant against its original function (what `mutmut show` prints, without
    starting mutmut once per mutant)."""
    import difflib

    module = file[:-3].replace("/", ".")
    funcs = sources[file]
    full = name[len(module) + 1:]  # x_func__mutmut_3, or xǁClassǁmethod__mutmut_3
    for local in (full, full.split("ǁ")[-1]):
        base = local.split("__mutmut_")[0]
        orig, mutant = funcs.get(f"{base}__mutmut_orig"), funcs.get(local)
        if orig is not None and mutant is not None:
            break
    else:
        return ""
    a = orig.replace(f"{base}__mutmut_orig", base).splitlines()
    b = mutant.replace(local, base).splitlines()
    return "\n".join(ln for ln in difflib.unified_diff(a, b, lineterm="", n=0)
                     if ln[:1] in "+-" and not ln.startswith(("+++", "---")))


def _natural(name: str) -> tuple:
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name))


def _glob(name: str, pattern: str) -> bool:
    import fnmatch

    return fnmatch.fnmatchcase(name, pattern)


def _key(mutant: dict) -> str:
    """Stable key for an equivalent mutant: function + changed lines (the numbered name shifts when code moves)."""
    func = mutant["name"].split("__mutmut_")[0]
    return func + "\n" + "\n".join(ln[:1] + " ".join(ln[1:].split()) for ln in mutant["diff"].splitlines()
                                     if ln.strip())


def load_equivalent() -> dict[str, str]:
    """The equivalent mutants of scripts/mutation_equivalent.toml and scripts/mutation_equivalent/*.toml."""
    files = [EQUIVALENT] if EQUIVALENT.exists() else []
    files += sorted(EQUIVALENT_DIR.glob("*.toml")) if EQUIVALENT_DIR.is_dir() else []
    out: dict[str, str] = {}
    for f in files:
        for e in tomllib.loads(f.read_text()).get("equivalent", []):
            out[_key({"name": e["function"] + "__mutmut_0", "diff": e["diff"]})] = e["reason"]
    return out


def summarise(result: dict, equivalent: dict[str, str]) -> dict:
    counts: dict[str, int] = {}
    survivors, equivalents = [], []
    for m in result["mutants"]:
        status = m["status"]
        if status == "segfault":  # the test process crashed: the change was detected
            status = "killed"
        if status != "killed" and status != "timeout" and _key(m) in equivalent:
            status = "equivalent"
            equivalents.append({**m, "reason": equivalent[_key(m)]})
        elif status not in ("killed", "timeout", "not checked"):
            survivors.append(m)
        counts[status] = counts.get(status, 0) + 1
    total = len(result["mutants"])
    killed = counts.get("killed", 0) + counts.get("timeout", 0)
    # not checked = a run stopped before reaching them (or mutants of code changed since): unknown, not scored
    scored = total - counts.get("equivalent", 0) - counts.get("not checked", 0)
    return {"counts": counts, "total": total, "killed": killed, "scored": scored,
            "score": killed / scored if scored else 1.0, "survivors": survivors, "equivalents": equivalents}


def write_report() -> list[str]:
    equivalent = load_equivalent()
    rows, sections, failing = [], [], []
    for target in TARGETS:
        path = BUILD / f"{target.name}.json"
        if target.name == "folds" and not path.exists() and (BUILD / "splits.json").exists():
            path = BUILD / "splits.json"  # same file and run as `splits`; only the functions differ
        committed = REPO / "docs" / "mutation" / f"{target.name}.json"
        source = path if path.exists() else committed if committed.exists() else None
        if source is None:
            rows.append(f"| {target.name} | {target.what} | — | — | — | — | — | not run yet |")
            continue
        result = json.loads(source.read_text())
        if target.functions:  # results of a run with a wider selection: keep this target's functions only
            result["mutants"] = [m for m in result["mutants"] if any(_glob(m["name"], p) for p in target.functions)]
        s = summarise(result, equivalent)
        ok = s["score"] >= THRESHOLD
        if not ok:
            failing.append(target.name)
        rows.append(f"| {target.name} | {target.what} | {s['total']} | {s['counts'].get('equivalent', 0)} | "
                    f"{s['counts'].get('not checked', 0)} | {s['killed']} | **{s['score']:.1%}** | "
                    f"{result['started'][:10]}, {result['seconds']} s |")
        lines = [f"### {target.name}", "",
                 f"Mutated: {', '.join(f'`{f}`' for f in target.files)}"
                 + (f" (functions {', '.join(f'`{p}`' for p in target.functions)})" if target.functions else "")
                 + f". Tests: {', '.join(f'`{t}`' for t in target.tests)}.", ""]
        if s["survivors"]:
            lines += [f"Surviving ({len(s['survivors'])}):", ""]
            for m in s["survivors"]:
                lines += [f"- `{m['name']}` ({m['status']})", "", "  ```diff",
                          *[f"  {ln}" for ln in m["diff"].splitlines()], "  ```", ""]
        else:
            lines += ["No surviving mutant outside the equivalent ones.", ""]
        if s["equivalents"]:
            lines += [f"Equivalent ({len(s['equivalents'])}):", ""]
            for m in s["equivalents"]:
                lines += [f"- `{m['name']}`: {m['reason']}", "", "  ```diff",
                          *[f"  {ln}" for ln in m["diff"].splitlines()], "  ```", ""]
        sections.append("\n".join(lines))
        if path.exists():  # keep a copy of the raw results next to the report
            (REPO / "docs" / "mutation").mkdir(exist_ok=True)
            shutil.copyfile(path, committed)
    text = DOC.read_text() if DOC.exists() else ""
    begin, end = "<!-- mutation:begin -->", "<!-- mutation:end -->"
    block = "\n".join([
        begin, "",
        "| target | what | mutants | equivalent | not checked | killed | score | run |",
        "|---|---|---|---|---|---|---|---|",
        *rows, "",
        f"Score = killed (incl. timeouts) / (mutants − equivalent − not checked); the bar is {THRESHOLD:.0%} per "
        "target. *Not checked*: mutants a run did not reach (stopped early) or of code changed since the run; they "
        "are unknown, so they are counted apart, not as killed.", "",
        *sections, end])
    if begin in text and end in text:
        text = text[:text.index(begin)] + block + text[text.index(end) + len(end):]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    DOC.write_text(text)
    return failing


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("targets", nargs="*", help=f"targets to run (default all): {', '.join(BY_NAME)}")
    ap.add_argument("--max-children", type=int, default=2, help="parallel mutant workers (default 2)")
    ap.add_argument("--report-only", action="store_true", help="only rebuild docs/testing.md from saved results")
    ap.add_argument("--collect-only", action="store_true",
                    help="do not run mutmut; collect the verdicts of the last (possibly interrupted) run")
    ap.add_argument("--survivors", action="store_true",
                    help="re-run only the mutants that survived last time (after adding tests)")
    ap.add_argument("--skip-unchecked", action="store_true",
                    help="with --survivors: leave the mutants the last run did not reach unchecked")
    ap.add_argument("--also", action="append", default=[], metavar="PATTERN",
                    help="with --survivors: re-run every mutant of these mutmut names too (a function changed since)")
    args = ap.parse_args(argv)
    unknown = [t for t in args.targets if t not in BY_NAME]
    if unknown:
        print(f"unknown target(s) {unknown}; choose from {list(BY_NAME)}", file=sys.stderr)
        return 2
    if not args.report_only:
        BUILD.mkdir(parents=True, exist_ok=True)
        for name in args.targets or list(BY_NAME):
            r = run_target(BY_NAME[name], args.max_children, args.survivors, args.collect_only, args.also,
                           args.skip_unchecked)
            s = summarise(r, load_equivalent())
            print(f"   {name}: {s['killed']}/{s['scored']} killed ({s['score']:.1%}), "
                  f"{len(s['survivors'])} surviving, {s['counts'].get('equivalent', 0)} equivalent, "
                  f"{r['seconds']} s", flush=True)
    failing = write_report()
    print(f"wrote {DOC.relative_to(REPO)}" + (f"; below {THRESHOLD:.0%}: {failing}" if failing else ""))
    return 1 if failing else 0


if __name__ == "__main__":
    sys.exit(main())
