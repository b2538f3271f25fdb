"""Quote stripping compared: our ``channels_app.providers.email.quotes`` against the libraries made for the job.

For every reply in ``tests/fixtures/email_quotes/replies.json`` (each with the new text a person reads in it,
written down there, and where the reply comes from) each candidate's answer is compared with the expected text,
whitespace-insensitively (each line stripped, blank lines dropped: only which lines are kept counts). Then it
times each candidate on the same replies (the median of ``--repeat`` calls per reply, then the median and p95
over the replies, in microseconds) and on pathological inputs (a 200,000-character line, 50,000 quoted lines...),
each run in a child process with a time limit, so that a candidate that backtracks for minutes is reported as
such instead of stopping the benchmark.

Candidates (a missing library is reported and skipped; ``pip install -e '.[quotes-comparison]'`` installs them):

- ``desk``: ``channels_app.providers.email.quotes.reply_text`` (this tree);
- ``desk@REV`` with ``--baseline REV``: the quote part of ``channels_app/providers/email/parsing.py`` at that
  git revision;
- ``mail-parser-reply``: ``EmailReplyParser(languages=<all it has>).parse_reply`` (its latest reply);
- ``mail-parser-reply+desk``: the library's latest reply, then ours on what it left (the library plus our fallbacks);
- ``quotequail``: ``unwrap`` (the text above and below the quote), else the text as is;
- ``email-reply-parser``: Zapier's port of GitHub's parser, ``EmailReplyParser.parse_reply``;
- ``talon``: Mailgun's ``quotations.extract_from_plain`` (needs lxml, numpy, scipy, scikit-learn).

Usage: ``.venv/bin/python benchmarks/quote_stripping.py [--baseline main] [--repeat 30] [--failures] [--json F]``
"""

from __future__ import annotations

import argparse
import email
import email.policy
import importlib.metadata
import json
import multiprocessing
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
CASES = FIXTURES / "email_quotes" / "replies.json"
PATHOLOGICAL_SECONDS = 20.0

sys.path.insert(0, str(ROOT))


def load_cases() -> list[dict]:
    cases = json.loads(CASES.read_text(encoding="utf-8"))["cases"]
    for case in cases:
        if "eml" in case:
            message = email.message_from_bytes((FIXTURES / case["eml"]).read_bytes(), policy=email.policy.default)
            part = next(part for part in message.walk() if part.get_content_type() == "text/plain")
            case["text"] = part.get_content()
    return cases


def normalised(text: str | None) -> str:
    return "\n".join(line.strip() for line in (text or "").splitlines() if line.strip())


# Candidates: each is built lazily, so a missing library only skips itself.


def desk() -> Callable[[str], str]:
    from channels_app.providers.email.quotes import reply_text

    return reply_text


def desk_at(revision: str) -> Callable[[str], str]:
    """The quote functions of parsing.py at ``revision`` (before they moved to quotes.py): only ``re`` is needed."""
    source = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{revision}:channels_app/providers/email/parsing.py"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    namespace: dict = {}
    exec("import re\n" + source[source.index("# Quoted history") :], namespace)  # noqa: S102 - our own file
    return namespace["reply_text"]


def mail_parser_reply() -> Callable[[str], str]:
    from mailparser_reply import EmailReplyParser
    from mailparser_reply.constants import MAIL_LANGUAGES

    parser = EmailReplyParser(languages=list(MAIL_LANGUAGES))
    return lambda text: parser.parse_reply(text) or ""


def mail_parser_reply_then_desk() -> Callable[[str], str]:
    library, ours = mail_parser_reply(), desk()
    return lambda text: ours(library(text))


def quotequail() -> Callable[[str], str]:
    import quotequail as library

    def strip(text: str) -> str:
        found = library.unwrap(text)
        if not found or found.get("type") == "forward":
            return text
        return "\n\n".join(part for part in (found.get("text_top"), found.get("text_bottom")) if part)

    return strip


def email_reply_parser() -> Callable[[str], str]:
    from email_reply_parser import EmailReplyParser

    return EmailReplyParser.parse_reply


def talon() -> Callable[[str], str]:
    from talon import quotations

    return quotations.extract_from_plain


CANDIDATES: dict[str, tuple[Callable[[], Callable[[str], str]], str | None]] = {
    "desk": (desk, None),
    "mail-parser-reply": (mail_parser_reply, "mail-parser-reply"),
    "mail-parser-reply+desk": (mail_parser_reply_then_desk, "mail-parser-reply"),
    "quotequail": (quotequail, "quotequail"),
    "email-reply-parser": (email_reply_parser, "email-reply-parser"),
    "talon": (talon, "talon"),
}


def pathological_inputs() -> dict[str, str]:
    return {
        "one 200,000-char line": "a" * 200_000,
        "200,000-char 'On ... ,' line": "On " + "1, " * 66_666 + "x",
        "50,000 lines of '>'": "\n".join([">"] * 50_000),
        "50,000 quoted and unquoted lines": "\n".join(["> q", "answer"] * 25_000),
        "20,000 'From: / Sent:' lines": "Hi\n" + "\n".join(["From: a", "Sent: b"] * 10_000),
        "20,000 'On 1 x' lines": "Hi\n" + "\n".join(["On 1 2 3 4 5 6 7 8 9"] * 20_000),
        "100,000 spaces then 'wrote:'": "Hi\n" + " " * 100_000 + "wrote:\n> x",
    }


def _run_one(name: str, revision: str | None, text: str, results) -> None:
    try:
        function = desk_at(revision) if name.startswith("desk@") else CANDIDATES[name][0]()
        started = time.perf_counter()
        function(text)
        results.put(("ok", time.perf_counter() - started))
    except BaseException as exc:
        results.put(("raised", f"{type(exc).__name__}: {str(exc)[:80]}"))


def time_pathological(name: str, revision: str | None, text: str) -> str:
    results = multiprocessing.get_context("fork").Queue()
    child = multiprocessing.get_context("fork").Process(target=_run_one, args=(name, revision, text, results))
    child.start()
    child.join(PATHOLOGICAL_SECONDS)
    if child.is_alive():
        child.kill()
        child.join()
        return f"> {PATHOLOGICAL_SECONDS:.0f} s (stopped)"
    if results.empty():
        return f"died (exit {child.exitcode})"
    outcome, value = results.get()
    return f"{value * 1000:.1f} ms" if outcome == "ok" else value


def version_of(distribution: str | None) -> str:
    if distribution is None:
        return subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
        ).stdout.strip()
    return importlib.metadata.version(distribution)


def main() -> int:
    arguments = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    arguments.add_argument("--baseline", help="also score the quote stripping of this git revision (e.g. main)")
    arguments.add_argument("--repeat", type=int, default=30, help="calls per reply for the timing (median kept)")
    arguments.add_argument("--failures", action="store_true", help="list the replies each candidate gets wrong")
    arguments.add_argument("--no-pathological", action="store_true", help="skip the pathological inputs")
    arguments.add_argument("--json", type=Path, help="write every figure and failure to this file")
    options = arguments.parse_args()

    cases = load_cases()
    candidates: dict[str, tuple[Callable[[str], str], str]] = {}
    if options.baseline:
        candidates[f"desk@{options.baseline}"] = (desk_at(options.baseline), options.baseline)
    for name, (build, distribution) in CANDIDATES.items():
        try:
            candidates[name] = (build(), version_of(distribution))
        except ImportError as exc:
            print(f"{name}: not installed ({exc.name}); pip install -e '.[quotes-comparison]'", file=sys.stderr)

    print(f"{len(cases)} replies from {CASES.relative_to(ROOT)}; Python {platform.python_version()}, {platform.node()}")
    print(f"{'candidate':<26} {'version':<10} {'right':>9} {'raised':>6} {'median µs':>10} {'p95 µs':>9}")
    report = {"cases": len(cases), "candidates": {}}
    for name, (function, version) in candidates.items():
        right, raised, failures, costs = 0, 0, [], []
        for case in cases:
            try:
                got = function(case["text"])
            except Exception as exc:
                raised += 1
                failures.append({"name": case["name"], "raised": f"{type(exc).__name__}: {exc}"})
                continue
            if normalised(got) == normalised(case["expected"]):
                right += 1
            else:
                failures.append({"name": case["name"], "got": got})
            samples = []
            for _ in range(options.repeat):
                started = time.perf_counter()
                function(case["text"])
                samples.append(time.perf_counter() - started)
            costs.append(statistics.median(samples) * 1e6)
        median = statistics.median(costs) if costs else float("nan")
        p95 = statistics.quantiles(costs, n=20)[-1] if len(costs) >= 2 else median
        print(f"{name:<26} {version:<10} {right:>4}/{len(cases):<4} {raised:>6} {median:>10.1f} {p95:>9.1f}")
        report["candidates"][name] = {
            "version": version,
            "right": right,
            "raised": raised,
            "median_us": round(median, 1),
            "p95_us": round(p95, 1),
            "failures": failures,
        }
    if options.failures:
        for name, figures in report["candidates"].items():
            print(f"\n{name} gets wrong: " + (", ".join(item["name"] for item in figures["failures"]) or "none"))

    if not options.no_pathological:
        limit = f"{PATHOLOGICAL_SECONDS:.0f} s"
        print(f"\nPathological inputs (wall time of one call in a child process, stopped after {limit})")
        inputs = pathological_inputs()
        print(f"{'input':<34} " + " ".join(f"{name[:22]:>22}" for name in candidates))
        report["pathological"] = {}
        for label, text in inputs.items():
            row = {}
            for name in candidates:
                revision = name.split("@", 1)[1] if name.startswith("desk@") else None
                row[name] = time_pathological(name, revision, text)
            report["pathological"][label] = row
            print(f"{label:<34} " + " ".join(f"{row[name][:22]:>22}" for name in candidates))

    if options.json:
        options.json.write_text(json.dumps(report, ensure_ascii=False, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
