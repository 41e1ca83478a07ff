"""Suite-wide hooks: the summary of what was skipped and why, so that no oracle goes missing quietly.

Tests that need `../shared/data` go through `shared_data.require_shared` (skip locally, fail in CI);
everything else that may skip is an optional extra (`pytest.importorskip`). The summary groups the
skips by reason at the end of every run.
"""

from __future__ import annotations

from collections import Counter

from shared_data import SKIP_PREFIX


def _reason(report) -> str:
    longrepr = report.longrepr
    reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
    return reason.removeprefix("Skipped: ")


def pytest_terminal_summary(terminalreporter):
    skipped = terminalreporter.stats.get("skipped", [])
    if not skipped:
        return
    reasons = Counter(_reason(r) for r in skipped)
    shared = sum(n for reason, n in reasons.items() if reason.startswith(SKIP_PREFIX))
    terminalreporter.section(f"{len(skipped)} skipped ({shared} for missing shared data, "
                             f"{len(skipped) - shared} for optional extras or settings)")
    for reason, n in reasons.most_common():
        terminalreporter.write_line(f"{n:4d}  {reason}")
