"""Reports of run directories: the timeline plot and the phase-by-phase comparison."""

from reclaimsim.report.compare import (
    hot_workload,
    load_summary,
    markdown_table,
    phase_rows,
    rich_table,
    write_report,
)
from reclaimsim.report.plots import phase_spans, timeline

__all__ = [
    "hot_workload",
    "load_summary",
    "markdown_table",
    "phase_rows",
    "phase_spans",
    "rich_table",
    "timeline",
    "write_report",
]
