"""The table at the end of .ci/run: each tier's wall time and test counts (from pytest's JUnit XML).

The last line is the total in the form CI reads: ``total: N passed, N failed, N skipped``.
Exit 1 when a tier ran no test (a collection that silently found nothing) or has failures.
"""

import sys
import xml.etree.ElementTree as ET
from pathlib import Path


def counts(xml: Path) -> tuple[int, int, int]:
    if not xml.exists():
        return 0, 0, 0
    suites = ET.parse(xml).getroot()
    suites = [suites] if suites.tag == "testsuite" else list(suites)
    tests = sum(int(s.get("tests", 0)) for s in suites)
    failed = sum(int(s.get("failures", 0)) + int(s.get("errors", 0)) for s in suites)
    skipped = sum(int(s.get("skipped", 0)) for s in suites)
    return tests - failed - skipped, failed, skipped


def main(reports: Path) -> int:
    bad = 0
    totals = [0, 0, 0]
    wall = None
    print(f"\n{'tier':<12} {'time':>8} {'passed':>7} {'failed':>7} {'skipped':>8}")
    for line in (reports / "times").read_text().splitlines():
        name, secs = line.split()
        mins = f"{int(secs) // 60}m{int(secs) % 60:02d}s"
        if name == "wall":  # the whole of .ci/run, set-up included; tiers that ran side by side overlap
            wall = mins
            continue
        row = counts(reports / f"{name}.xml") if name != "lint" else None
        if row is None:
            print(f"{name:<12} {mins:>8}")
            continue
        totals = [a + b for a, b in zip(totals, row)]
        print(f"{name:<12} {mins:>8} {row[0]:>7} {row[1]:>7} {row[2]:>8}")
        bad |= row[1] > 0 or sum(row) == 0
    if wall:
        print(f"{'whole run':<12} {wall:>8}  (set-up included; the upstream tier ran beside the others)")
    print(f"total: {totals[0]} passed, {totals[1]} failed, {totals[2]} skipped")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
