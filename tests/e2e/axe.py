"""Accessibility checks with axe-core, injected into a page the browser has open.

axe-core comes from the npm registry, pinned in tests/e2e/package.json and package-lock.json, and installed with
``npm ci --prefix tests/e2e`` (``make test`` does it when tests/e2e/node_modules is missing). Nothing is fetched at
test time and no CDN is involved: the test reads the installed file and evaluates it in the page.
"""

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

AXE_SCRIPT = Path(__file__).resolve().parent / "node_modules" / "axe-core" / "axe.min.js"
# What fails a page: axe's two highest impacts. "moderate" and "minor" are reported by axe but do not fail here.
FAILING_IMPACTS = frozenset({"serious", "critical"})
# WCAG 2.x A and AA plus axe's best practices: what a screen reader or keyboard user runs into on a console page.
RUN_OPTIONS = {
    "runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]},
    "resultTypes": ["violations"],
}


@dataclass(frozen=True)
class Violation:
    rule: str
    impact: str
    help: str
    help_url: str
    targets: tuple[str, ...]  # CSS selectors of the failing nodes
    summaries: tuple[str, ...]  # axe's "Fix any of the following" text per node

    def describe(self) -> str:
        nodes = "\n".join(
            f"    {target}\n      {summary.replace(chr(10), chr(10) + '      ')}"
            for target, summary in zip(self.targets, self.summaries, strict=True)
        )
        return f"  [{self.impact}] {self.rule}: {self.help} ({self.help_url})\n{nodes}"


@cache
def axe_source() -> str:
    """axe-core's script. Missing, the test fails (never skips): an accessibility check that cannot run is a broken
    run, not a pass."""
    if not AXE_SCRIPT.is_file():
        pytest.fail(f"axe-core is not installed at {AXE_SCRIPT}: run npm ci --prefix tests/e2e")
    return AXE_SCRIPT.read_text(encoding="utf-8")


def axe_inject(page) -> None:
    """Load axe-core into ``page`` once. Evaluated through the browser's debugging protocol, not added as an inline
    <script>, which the pages' Content-Security-Policy blocks (as it must)."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(axe_source())


def axe_violations(page, *, context: str | dict | None = None) -> list[Violation]:
    """Every violation axe finds on ``page`` as it is now (all impacts), in axe's order.

    ``context`` narrows the check (a selector or axe's include/exclude object); by default the whole document."""
    axe_inject(page)
    results = page.evaluate(
        "async ([context, options]) => await window.axe.run(context ?? document, options)",
        [context, RUN_OPTIONS],
    )
    return [
        Violation(
            rule=violation["id"],
            impact=violation.get("impact") or "",
            help=violation["help"],
            help_url=violation["helpUrl"],
            targets=tuple(" ".join(map(str, node["target"])) for node in violation["nodes"]),
            summaries=tuple(node.get("failureSummary") or "" for node in violation["nodes"]),
        )
        for violation in results["violations"]
    ]


def assert_accessible(page, *, name: str, context: str | dict | None = None) -> None:
    """Fail with every serious or critical violation on ``page`` (rule id, help, failing nodes); ``name`` says which
    page in the message."""
    failing = [v for v in axe_violations(page, context=context) if v.impact in FAILING_IMPACTS]
    if failing:
        report = "\n".join(violation.describe() for violation in failing)
        pytest.fail(f"axe-core: {len(failing)} serious or critical violation(s) on {name} ({page.url}):\n{report}")
