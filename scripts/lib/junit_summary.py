"""Print per-report test counts and a closing 'N passed, M failed' line
for JUnit XML reports (pytest --junitxml, node --test-reporter=junit).
Exit status 1 if any test failed or errored."""

import sys
import xml.etree.ElementTree as ET
from pathlib import Path


def count(path: Path) -> tuple[int, int, int]:
    passed = failed = skipped = 0
    for case in ET.parse(path).getroot().iter("testcase"):
        tags = {child.tag for child in case}
        if tags & {"failure", "error"}:
            failed += 1
        elif "skipped" in tags:
            skipped += 1
        else:
            passed += 1
    return passed, failed, skipped


def main(paths: list[str]) -> int:
    total = [0, 0, 0]
    for p in map(Path, paths):
        c = count(p)
        total = [a + b for a, b in zip(total, c)]
        print(f"  {p.stem:<12} {c[0]} passed, {c[1]} failed, {c[2]} skipped")
    line = f"{total[0]} passed, {total[1]} failed"
    if total[2]:
        line += f", {total[2]} skipped"
    print(line)
    return 1 if total[1] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
