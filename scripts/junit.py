"""scripts/test's reading of its stages' results (standard library only).

junit.py count XML         tests that ran (passed or failed, not skipped); 0 when no file
junit.py summary LOGS SEC  the stage table, the 15 slowest tests, the test count; exit 1
                           when a test failed, a stage failed outside its tests, or an
                           expected stage (LOGS/expected) never reported
"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from pathlib import Path


def cases(xml: Path) -> list[ET.Element]:
    return list(ET.parse(xml).iter("testcase")) if xml.exists() else []


def outcome(case: ET.Element) -> str:
    if case.find("failure") is not None or case.find("error") is not None:
        return "failed"
    return "skipped" if case.find("skipped") is not None else "passed"


def count(xml: Path) -> int:
    return sum(outcome(case) != "skipped" for case in cases(xml))


def summary(logs: Path, total: str) -> int:
    passed = failed = 0
    broken: list[str] = []
    timings: list[tuple[float, str]] = []
    reported = set()
    print(f"{'stage':<28} {'result':<8} {'seconds':>7} {'passed':>7} {'failed':>7}")
    results = sorted(logs.glob("*.result"), key=lambda p: p.stat().st_mtime - int(p.read_text().split()[1]))
    for result in results:
        name = result.stem
        reported.add(name)
        status, seconds = result.read_text().split()
        ok = bad = 0
        for case in cases(logs / f"{name}.xml"):
            state = outcome(case)
            ok += state == "passed"
            bad += state == "failed"
            test = f"{name}: {case.get('classname')}::{case.get('name')}"
            timings.append((float(case.get("time", 0)), test))
        if status != "passed" and bad == 0:
            bad = 1  # failed outside the tests (converge, idempotence, time limit, no tests)
            broken.append(f"{name} {status}")
        passed, failed = passed + ok, failed + bad
        print(f"{name:<28} {status:<8} {seconds:>7} {ok:>7} {bad:>7}")
    print(f"{'total':<28} {'':<8} {total:>7}")
    expected = (logs / "expected").read_text().split() if (logs / "expected").exists() else []
    for name in expected:
        if name not in reported:
            failed += 1
            broken.append(f"{name} NEVER-REPORTED (queued, never finished: its worker died or was killed)")
    if broken:
        print("failed outside the tests (counted once each): " + ", ".join(broken))
    print("\nthe 15 slowest tests:")
    for seconds, name in sorted(timings, reverse=True)[:15]:
        print(f"{seconds:8.1f} s  {name}")
    print(f"\n{passed} passed, {failed} failed")
    return 1 if failed else 0


def main() -> int:
    command, *args = sys.argv[1:]
    if command == "count":
        print(count(Path(args[0])))
        return 0
    if command == "summary":
        return summary(Path(args[0]), args[1])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
