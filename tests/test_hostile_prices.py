"""Impossible price rows are refused with the file, line and reason; the store keeps its rows."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from dashboard.prices import (
    FetchResult,
    PriceFileError,
    drop_impossible,
    import_csv,
    impossible_rows,
    read_price_csv,
    update_prices,
)
from dashboard.store import Store

HEAD = "Date,Open,High,Low,Close,Volume\n"
GOOD = "2021-12-28,1,2,0.5,1.5,10\n"


def closes(store: Store, symbol: str) -> list[tuple[object, float]]:
    with store.read() as con:
        return con.execute("SELECT date, close FROM prices WHERE symbol = ? ORDER BY date", [symbol]).fetchall()


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ("2021-12-29,1,2,0.5,-1.5,10", "a price that is not a positive finite number"),
        ("2021-12-29,1,2,0.5,0,10", "a price that is not a positive finite number"),
        ("2021-12-29,1,inf,0.5,1.5,10", "a price that is not a positive finite number"),
        ("2021-12-29,1,2,0.5,1e400,10", "a price that is not a positive finite number"),
        ("2021-12-29,1,2,0.5,1.5,1e400", "a negative or infinite volume"),
        ("2021-12-29,1,2,0.5,1.5,-10", "a negative or infinite volume"),
        ("2021-12-29,1,0.5,2,1.5,10", "high below low"),
        ("2022-01-01,1,2,0.5,1.5,10", "a weekend date"),
        ("1900-01-02,1,2,0.5,1.5,10", "a date outside 1970-01-01"),
        ("9999-12-31,1,2,0.5,1.5,10", "9999-12-31"),
        ("0001-01-01,1,2,0.5,1.5,10", "0001-01-01"),
    ],
)
def test_impossible_rows_refuse_the_file_naming_line_and_reason(store: Store, tmp_path: Path, row: str,
                                                                 reason: str) -> None:
    ok = tmp_path / "3690.HK.csv"
    ok.write_text(HEAD + GOOD)
    import_csv(store, ok)
    before = closes(store, "3690.HK")
    bad = tmp_path / "bad" / "3690.HK.csv"
    bad.parent.mkdir()
    bad.write_text(HEAD + GOOD + row + "\n")
    with pytest.raises(PriceFileError) as e:
        import_csv(store, bad)
    assert str(bad) in str(e.value) and reason in str(e.value)
    if "outside" in reason or "weekend" in reason or "price" in reason or "volume" in reason or "high" in reason:
        assert "line 3" in str(e.value)
    assert closes(store, "3690.HK") == before


def test_several_impossible_rows_are_counted(tmp_path: Path) -> None:
    bad = tmp_path / "3690.HK.csv"
    bad.write_text(HEAD + GOOD + "2021-12-29,1,2,0.5,-1,10\n2021-12-30,1,2,0.5,-1,10\n")
    with pytest.raises(PriceFileError, match=r"line 3 .*and 1 more such rows"):
        read_price_csv(bad)


def test_real_exports_have_no_impossible_rows(shared_prices: Path) -> None:
    files = [p for p in shared_prices.glob("*/*.csv") if not p.name.startswith("_")]
    assert len(files) >= 90
    for p in files:
        _, frame = read_price_csv(p)
        assert impossible_rows(frame).isna().all(), p


def test_a_source_sending_impossible_rows_has_them_dropped_with_a_warning(store: Store) -> None:
    days = [date(2021, 12, 28), date(2021, 12, 29), date(2021, 12, 30)]
    frame = pd.DataFrame({"open": [1.0, 1, 1], "high": [2.0, 2, 2], "low": [0.5, 0.5, 0.5],
                          "close": [1.5, float("inf"), 1.6], "adj_close": [1.5, 1.5, 1.6],
                          "volume": [10.0, 10, 10]}, index=pd.Index(days, name="date"))
    kept, why = drop_impossible(frame, "3690.HK")
    assert list(kept.index) == [days[0], days[2]]
    assert why == "3690.HK: dropped 1 impossible rows (first 2021-12-29: a price that is not a positive finite number)"

    class Source:
        name = "test"

        def fetch(self, symbols, start, end):  # type: ignore[no-untyped-def]
            return FetchResult(frames={"3690.HK": frame})

    report = update_prices(store, Source(), {"3690.HK": (days[0], days[-1])}, today=date(2022, 1, 10))
    assert report.warnings == [why]
    assert [d for d, _ in closes(store, "3690.HK")] == [days[0], days[2]]
    with store.read() as con:
        assert con.execute("SELECT count(*) FROM daily_returns WHERE NOT isfinite(ret)").fetchone() == (0,)
