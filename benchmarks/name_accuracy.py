"""How many securities in a folder of real posts get their right name.

    python benchmarks/name_accuracy.py [--posts ../shared/posts] [--expected tests/data/expected_names.csv]

Ingests the posts into a throwaway store and compares each security's name with the
ground truth (symbol,name), twice: as the dashboard names them (reference list first), and
from the posts alone (no reference list), which measures how well the names printed in the
posts are read. From the posts alone a share-class marker and letter case are not counted
(posts print 小米集团 for 小米集团-W).
"""

from __future__ import annotations

import argparse
import csv
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dashboard.ingest import ingest_folder  # noqa: E402
from dashboard.names import Reference, name_securities, stem  # noqa: E402
from dashboard.store import Store  # noqa: E402


@dataclass
class NameCheck:
    right: int = 0
    total: int = 0
    misses: list[tuple[str, str | None, str]] = field(default_factory=list)  # symbol, got, expected
    unexpected: list[str] = field(default_factory=list)  # securities found but not in the truth

    @property
    def accuracy(self) -> float:
        return self.right / self.total if self.total else 0.0

    def lines(self) -> list[str]:
        out = [f"{self.right}/{self.total} = {self.accuracy:.1%}"]
        out += [f"  miss {s}: got {g!r}, expected {e!r}" for s, g, e in self.misses]
        out += [f"  not in the ground truth: {s}" for s in self.unexpected]
        return out


def read_expected(path: Path) -> dict[str, str]:
    with path.open(encoding="utf-8") as f:
        return {row["symbol"]: row["name"] for row in csv.DictReader(f)}


def check(store: Store, expected: Mapping[str, str], lenient: bool = False) -> NameCheck:
    """Names of the securities the store's articles mention, against the ground truth."""
    with store.read() as con:
        got = dict(con.execute(
            "SELECT symbol, name FROM securities WHERE symbol IN (SELECT symbol FROM mentions)").fetchall())
    result = NameCheck(total=len(expected), unexpected=sorted(set(got) - set(expected)))
    for symbol, want in sorted(expected.items()):
        name = got.get(symbol)
        if name == want or (lenient and name is not None and stem(name).casefold() == stem(want).casefold()):
            result.right += 1
        else:
            result.misses.append((symbol, name, want))
    return result


def measure(posts: Path, expected: Mapping[str, str],
            reference: Mapping[str, Reference] | None = None) -> NameCheck:
    """Ingest ``posts`` into a throwaway store and check the names (``reference={}``: posts alone)."""
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "names.duckdb")
        ingest_folder(store, posts, workers=1)
        if reference is not None:
            with store.write() as con:
                name_securities(con, reference=reference)
        return check(store, expected, lenient=reference is not None)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--posts", type=Path, default=ROOT.parent / "shared" / "posts")
    ap.add_argument("--expected", type=Path, default=ROOT / "tests" / "data" / "expected_names.csv")
    args = ap.parse_args()
    if not args.posts.is_dir():
        print(f"error: {args.posts} is not a folder", file=sys.stderr)
        return 2
    expected = read_expected(args.expected)
    print(f"names of the securities in {args.posts} ({len(expected)} in the ground truth)")
    print("as the dashboard names them:", *measure(args.posts, expected).lines(), sep="\n")
    print("from the posts alone:", *measure(args.posts, expected, reference={}).lines(), sep="\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
