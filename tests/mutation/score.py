"""Mutation scores of the modules under mutation testing, from mutmut's results.

Run after `mutmut run` (configured in pyproject.toml, `[tool.mutmut]`), from the
repository root:

    python tests/mutation/score.py [--min 95] [--list]

A module's score is killed / (mutants - equivalent mutants). The equivalent
mutants are listed, each with its reason, in `tests/mutation/equivalent.md`;
a listed mutant that was killed or no longer exists, and a survivor that is not
listed, are both reported, so the list stays honest when the code changes.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
EQUIVALENT = HERE / "equivalent.md"

# mutmut's exit codes (mutmut/stats.py): a failing test run, a timeout or a type
# error is a kill; 0 is a survivor; 5/33 mean no test reached the mutant.
KILLED = {1, 3, 24, -24, 36, 37, 152, 255}
SURVIVED = {0}
NO_TESTS = {5, 33}

_NAME = re.compile(r"`([^`\s]+__mutmut_\d+)`")


def modules(pyproject: Path) -> list[str]:
    """The `only_mutate` paths of `[tool.mutmut]`."""
    import tomllib

    with pyproject.open("rb") as f:
        return list(tomllib.load(f)["tool"]["mutmut"]["only_mutate"])


def equivalent_mutants(path: Path) -> set[str]:
    """Every mutant name quoted in backticks in the list."""
    if not path.exists():
        return set()
    return set(_NAME.findall(path.read_text("utf-8")))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--min", type=float, default=None, help="fail below this score (%%)")
    parser.add_argument("--list", action="store_true", help="name every unkilled mutant")
    args = parser.parse_args(argv)

    equivalent = equivalent_mutants(EQUIVALENT)
    seen: set[str] = set()
    failed = False
    print(f"{'module':28} {'mutants':>7} {'equiv':>5} {'killed':>6} {'alive':>5}  score")
    for module in modules(ROOT / "pyproject.toml"):
        meta = ROOT / "mutants" / (module + ".meta")
        if not meta.exists():
            print(f"{module:28} not run (no {meta.relative_to(ROOT)})")
            failed = True
            continue
        codes: dict[str, int | None] = json.loads(meta.read_text("utf-8"))["exit_code_by_key"]
        seen.update(codes)
        killed = [k for k, c in codes.items() if c in KILLED]
        alive = [k for k, c in codes.items() if c not in KILLED]
        equiv = [k for k in alive if k in equivalent]
        stale = [k for k in killed if k in equivalent]
        unexplained = sorted(k for k in alive if k not in equivalent)
        relevant = len(codes) - len(equiv)
        score = 100.0 * len(killed) / relevant if relevant else 100.0
        print(
            f"{module:28} {len(codes):7} {len(equiv):5} {len(killed):6} "
            f"{len(unexplained):5}  {len(killed)}/{relevant} = {score:.1f} %"
        )
        if args.min is not None and score < args.min:
            failed = True
        if args.list:
            for k in unexplained:
                status = {0: "survived", 5: "no tests", 33: "no tests"}.get(codes[k], "not run")
                print(f"    {status:9} {k}")
        for k in stale:
            print(f"    listed as equivalent but killed: {k}")
    for k in sorted(equivalent - seen):
        print(f"    listed as equivalent but no such mutant (code changed?): {k}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
