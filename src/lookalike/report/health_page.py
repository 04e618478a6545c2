"""The HTML report's Health section: each check's count and threshold, per category when the
files carry one, and the first flagged files with their value (paths only, no thumbnails)."""

from __future__ import annotations

from html import escape

from ..index.store import display_path
from .health import HealthReport

LISTED = 20  # flagged files listed per check on the page

_SIGN = {"below": "&lt;", "at or below": "&le;", "at or above": "&ge;", "above": "&gt;"}


def health_section(report: HealthReport | None, listed: int = LISTED) -> str:
    if report is None:
        return ""
    rows = []
    lists = []
    for check in report.checks.values():
        if not check.checked:
            continue
        categories = ", ".join(f"{escape(k)} {n:,}" for k, n in check.by_category.items())
        rows.append(f"<tr><td>{escape(check.name)}</td><td class=\"num\">{check.count:,}</td>"
                    f"<td>{escape(check.value)} {_SIGN.get(check.flags, '')} "
                    f"{check.threshold:.4g}</td><td>{categories}</td></tr>")
        if check.flagged:
            items = "".join(f"<li><code>{escape(display_path(f.path))}</code> {f.value:.4g}</li>"
                            for f in check.flagged[:listed])
            more = check.count - min(listed, len(check.flagged))
            tail = f"<p>... and {more:,} more (<code>lookalike stats --format json</code>)</p>" \
                if more > 0 else ""
            lists.append(f"<details><summary>{escape(check.name)}: {check.count:,} flagged"
                         f"</summary><ol>{items}</ol>{tail}</details>")
    notes = "".join(f'<p class="note">{escape(n)}</p>' for n in report.notes)
    by = f"<th>by {escape(report.by)}</th>" if report.by else "<th></th>"
    return (f'<section id="health"><h2>Health</h2><p>{report.measured:,} of '
            f"{report.images:,} images measured.</p>{notes}<table><thead><tr><th>check</th>"
            f"<th>flagged</th><th>threshold</th>{by}</tr></thead><tbody>{''.join(rows)}"
            f"</tbody></table>{''.join(lists)}</section>")
