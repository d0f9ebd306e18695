"""The supervisor SLA dashboard's figures, computed from `human_task`.

Every number the dashboard shows, drills into or exports comes from this package, so the
screen, the CSV and the XLSX can never disagree (the web layer renders and exports the same
`Table`). No Flask here: the CLI, tests and the benchmark call it directly.

Modules, by concept (each states its definitions at its top):

| module | what |
|---|---|
| `filters` | `Filters` (office, period, SOP, step, officer) and the default period |
| `zones` | office-local dates and weekdays (`Office.timezone`), in SQL and Python |
| `scope` | the offices/SOPs/versions in scope, shared WHERE clauses, the SLA states (late, on time) |
| `rows` | the result rows every figure function returns |
| `percentiles` | median and p90, identical in SQL, Python and the rollup |
| `rollup` | building the blocks of past days; `completed` reads them with today's live rows |
| `figures` | overview, per-office totals, per-officer workload |
| `patterns` | trends per week, late heatmap per weekday, TIDAK returns |
| `drill` | the steps behind one figure |
| `tables` | the `Table`s the screen, CSV and XLSX share |
| `evaluation` | the SOP monitoring and evaluation forms (Permenpan RB 35/2012) from the same figures |
"""
from .drill import DRILL_LIMIT, FIGURES, drill
from .evaluation import (
    CRITERIA, Criterion, Proposal, SopEvaluation, StepEvaluation, evaluate, evaluation_table, monitoring_table,
    summary_table,
)
from .figures import office_summary, officers, overview
from .filters import Filters, default_period
from .patterns import late_heatmap, rework, trends
from .percentiles import percentile
from .rollup import build_rollup, ensure_rollup, rollup_cutoff
from .rows import (
    DrillResult, DrillRow, HeatRow, OfficeRow, OfficerRow, OfficerStep, ReworkRow, Sop, StepRow, WeekRow,
)
from .scope import entry_step, ordered_steps, step_order
from .tables import (
    WEEKDAYS, Table, drill_table, heatmap_table, minutes, officer_steps_table, officers_table, offices_table,
    overview_table, pct, rework_table, trends_table,
)

__all__ = [
    "CRITERIA", "Criterion", "Proposal", "SopEvaluation", "StepEvaluation", "evaluate", "evaluation_table",
    "monitoring_table", "summary_table",
    "DRILL_LIMIT", "FIGURES", "WEEKDAYS", "DrillResult", "DrillRow", "Filters", "HeatRow", "OfficeRow", "OfficerRow",
    "OfficerStep", "ReworkRow", "Sop", "StepRow", "Table", "WeekRow", "build_rollup", "default_period", "drill",
    "drill_table", "ensure_rollup", "entry_step", "ordered_steps", "heatmap_table", "late_heatmap", "minutes",
    "office_summary", "officer_steps_table", "officers", "officers_table", "offices_table", "overview", "overview_table", "pct",
    "percentile", "rework", "rework_table", "rollup_cutoff", "step_order", "trends", "trends_table",
]
