"""Human-facing views of a comparison: the Markdown description of the experiment run, the CLI table and a
self-contained `report.html` (plots embedded as base64). Pure pandas; every number shows 4 significant digits.
"""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path
from typing import Any

import pandas as pd

from recsys.evaluation.decision import Decision, fmt

DERIVED = ("_ci_low", "_ci_high", "_std", "delta_vs_best", "p_value", "cohens_d", "seconds", "tied_with_best")
PREFERRED = ("recall_at", "hit_rate_at", "map_at", "catalog_coverage_at", "precision_at", "mrr_at", "lift_at",
             "product_coverage", "recall_vs_exact_at", "silhouette")


def headline_metrics(comparison: pd.DataFrame, metric: str, n: int = 4) -> list[str]:
    """`metric` then up to `n` more plain metrics (same K first), for tables people read."""
    plain = [c for c in comparison.columns if c != metric and "/" not in c and not any(d in c for d in DERIVED)
             and pd.api.types.is_numeric_dtype(comparison[c]) and comparison[c].dtype != bool]
    k = re.search(r"_at_(\d+)$", metric)
    suffix = f"_at_{k.group(1)}" if k else None

    def rank(c: str) -> tuple[int, int]:
        pref = next((i for i, p in enumerate(PREFERRED) if c.startswith(p)), len(PREFERRED))
        return (0 if suffix and c.endswith(suffix) else 1, pref)

    return [metric, *sorted(plain, key=rank)[:n]]


def value_with_ci(row: pd.Series, metric: str) -> str:
    v = fmt(row.get(metric))
    lo, hi = row.get(f"{metric}_ci_low"), row.get(f"{metric}_ci_high")
    if lo is not None and hi is not None and not pd.isna(lo) and not pd.isna(hi):
        return f"{v} [{fmt(lo)}, {fmt(hi)}]"
    return v


def comparison_rows(comparison: pd.DataFrame, decision: Decision) -> pd.DataFrame:
    """The comparison as strings: selection metric with CI, Δ and corrected p vs the best, a tie marker, and
    more metrics."""
    metric = decision.metric
    cols = headline_metrics(comparison, metric)
    conf = _confidence_label(comparison, metric)
    rows = []
    for label, row in comparison.iterrows():
        label = str(label)
        status = ("selected" if label == decision.selected else "") + (
            " best" if label == decision.best and decision.best != decision.selected else "")
        if decision.is_tied(label):
            status = (status + " tied").strip()
        out: dict[str, Any] = {"model": label, f"{metric} {conf}".strip(): value_with_ci(row, metric)}
        out["Δ vs best"] = "—" if label == decision.best else fmt(row.get("delta_vs_best"))
        out[f"p vs best ({decision.test}, Holm)"] = "—" if label == decision.best else fmt(row.get("p_value_vs_best"))
        for c in cols[1:]:
            out[c] = value_with_ci(row, c) if f"{c}_ci_low" in comparison.columns else fmt(row.get(c))
        out["tie"] = status.strip() or ""
        rows.append(out)
    return pd.DataFrame(rows)


def _confidence_label(comparison: pd.DataFrame, metric: str) -> str:
    return "[95% CI]" if f"{metric}_ci_low" in comparison.columns else ""


def markdown_table(frame: pd.DataFrame, bold_row: int | None = None) -> str:
    cols = [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for i, (_, row) in enumerate(frame.iterrows()):
        cells = [str(v).replace("|", "\\|") for v in row.to_numpy()]
        if i == bold_row:
            cells = [f"**{c}**" if c else c for c in cells]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def decision_markdown(comparison: pd.DataFrame, decision: Decision, title: str, n_units: int | None = None,
                      n_resamples: int = 0, confidence: float = 0.95) -> str:
    """The experiment run's description (`mlflow.note.content`): one row per model, the winner in bold."""
    rows = comparison_rows(comparison, decision)
    if n_resamples:
        rows = rows.rename(columns={c: c.replace("[95% CI]", f"[{fmt(confidence * 100)}% CI]") for c in rows.columns})
    hit = rows.index[rows["model"] == decision.selected]
    bold = int(hit[0]) if len(hit) else None
    tied = ", ".join(decision.tied) or "none"
    lines = [f"### {title}", "",
             f"**Selected: {decision.selected}** (rule `{decision.rule}`): {decision.reason}.", "",
             f"Tied with the best ({decision.best}) at α = {fmt(decision.alpha)}: {tied}.", ""]
    lines.append(markdown_table(rows, bold))
    notes = []
    if n_resamples:
        notes.append(f"Intervals: seeded paired percentile bootstrap, {n_resamples} resamples over "
                     f"{n_units if n_units is not None else 'the'} evaluation users "
                     "(the same resamples for every model).")
    if decision.tested:
        notes.append(f"Tests: per-user paired differences against {decision.best}; {decision.test} signed-rank "
                     "(p vs best) and paired t-test, Holm–Bonferroni corrected across the models compared; "
                     "`tied` = not significantly different.")
    else:
        notes.append("No per-user metric vectors: differences were not tested.")
    lines.extend(["", *notes])
    return "\n".join(lines) + "\n"


# ---- report.html ----------------------------------------------------------------------------------------

_CSS = """body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:24px;max-width:1200px;color:#222}
table{border-collapse:collapse;margin:8px 0 20px}th,td{border:1px solid #ccc;padding:4px 8px;text-align:right}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}tr.selected td{font-weight:bold}
tr.tied td{background:#fff6dc}.verdict{padding:8px 12px;border-left:4px solid #3b6ea5;background:#f5f8fc}
.bad{border-color:#c0392b;background:#fbf1f0}img{max-width:100%;border:1px solid #eee}code{background:#f3f3f3}"""


def html_table(frame: pd.DataFrame, row_classes: list[str] | None = None) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    body = []
    for i, (_, row) in enumerate(frame.iterrows()):
        cls = f' class="{row_classes[i]}"' if row_classes and row_classes[i] else ""
        cells = "".join(f"<td>{html.escape(_cell(v))}</td>" for v in row.to_numpy())
        body.append(f"<tr{cls}>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _cell(v: Any) -> str:
    if isinstance(v, float):
        return fmt(v)
    return str(v)


def embed_png(path: Path | str, alt: str) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _kv_table(values: dict[str, Any]) -> pd.DataFrame:
    return pd.DataFrame({"quantity": list(values), "value": [_cell(v) for v in values.values()]})


def build_report(title: str, comparison: pd.DataFrame, decision: Decision, stats: dict, verdict: dict | None,
                 plots: dict[str, Path], slices: dict[str, pd.DataFrame], folds: pd.DataFrame | None,
                 tests: pd.DataFrame | None = None, notes: str = "") -> str:
    """One self-contained HTML page: data diagnostics + verdict, split audit, comparison with CIs and corrected
    tests, slices, fold table. `plots`: caption -> PNG file (embedded as base64)."""
    head = (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{_CSS}</style></head><body>")
    parts = [head, f"<h1>{html.escape(title)}</h1>"]
    parts.append("<h2>Data diagnostics</h2>")
    if verdict:
        cls = "verdict" if verdict.get("feasible", True) else "verdict bad"
        reasons = "".join(f"<li>{html.escape(r)}</li>" for r in verdict.get("reasons", []))
        parts.append(f"<div class='{cls}'><b>Verdict: {html.escape(verdict.get('verdict', ''))}</b>"
                     f"<ul>{reasons}</ul></div>")
    flat = {k: v for k, v in stats.items() if not isinstance(v, (dict, list))}
    if flat:
        parts.append(html_table(_kv_table(flat)))
    split = stats.get("split") or {}
    if split:
        parts.append("<h2>Split audit</h2>")
        audit = {k: v for k, v in split.items() if not isinstance(v, dict)}
        audit.update({f"audit.{k}": v for k, v in (split.get("audit") or {}).items()
                      if not isinstance(v, (dict, list))})
        parts.append(html_table(_kv_table(audit)))
    parts.append("<h2>Comparison</h2>")
    parts.append(f"<p><b>Selected: {html.escape(decision.selected)}</b> "
                 f"(rule <code>{html.escape(decision.rule)}</code>)"
                 f": {html.escape(decision.reason)}. Tied with the best ({html.escape(decision.best)}) at "
                 f"α = {fmt(decision.alpha)}: {html.escape(', '.join(decision.tied) or 'none')}.</p>")
    rows = comparison_rows(comparison, decision)
    classes = [("selected " if m == decision.selected else "") + ("tied" if decision.is_tied(m) else "")
               for m in rows["model"]]
    parts.append(html_table(rows, classes))
    if notes:
        parts.append(f"<p>{html.escape(notes)}</p>")
    if tests is not None and not tests.empty:
        parts.append("<h3>Paired tests against the best (per-user differences)</h3>")
        keep = ["metric", "model", "best", "n", "delta", "delta_ci_low", "delta_ci_high", "cohens_d",
                "p_wilcoxon", "p_wilcoxon_adjusted", "p_ttest", "p_ttest_adjusted", "tied"]
        parts.append(html_table(tests[[c for c in keep if c in tests.columns]]))
    for caption, path in plots.items():
        if Path(path).exists():
            parts.append(f"<h3>{html.escape(caption)}</h3>{embed_png(path, caption)}")
    if slices:
        parts.append("<h2>Slices</h2><p>Per-user metrics by user activity in training, fallback users, and "
                     "recall by the popularity of the relevant items (head = top 20% of items).</p>")
        for label, frame in slices.items():
            parts.append(f"<h3>{html.escape(label)}</h3>{html_table(frame)}")
    if folds is not None and not folds.empty:
        parts.append("<h2>Folds</h2>")
        parts.append(html_table(folds))
    parts.append("</body></html>")
    return "\n".join(parts)
