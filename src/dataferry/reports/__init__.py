"""Run reports: JSON, a self-contained HTML page and the CI job summary's Markdown."""

from .markdown import report_markdown
from .run_report import build_report, find_report, report_folder, write_report

__all__ = ["build_report", "find_report", "report_folder", "report_markdown", "write_report"]
