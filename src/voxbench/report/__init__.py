"""Reports: every view of a result document, for people (Markdown, the terminal) and for
dashboards. Reporters only read documents; they never measure."""

from voxbench.report.markdown import all_sections, render_markdown, write_report

__all__ = ["all_sections", "render_markdown", "write_report"]
