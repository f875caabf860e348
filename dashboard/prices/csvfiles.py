"""yfinance CSV exports, either shape: one file, or a folder of them as a price source."""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from datetime import date
from pathlib import Path

import pandas as pd

from dashboard.prices import FetchResult, PriceFailure, impossible_rows, normalize
from dashboard.securities import parse_symbol


class PriceFileError(ValueError):
    """A price CSV that cannot be imported; nothing of it is stored."""


_HISTORY = {"Date", "Open", "High", "Low", "Close", "Volume"}
_DATE_PREFIX = re.compile(r"^\d{4}-\d{2}-\d{2}")


def symbol_from_filename(path: Path) -> str:
    return path.name.removesuffix(".csv").removesuffix(".CSV")


def read_price_csv(path: str | Path, symbol: str | None = None) -> tuple[str, pd.DataFrame]:
    """A yfinance CSV export, either shape, as (symbol, normalized frame).

    Shapes: ``Ticker.history()`` (``Date,Open,High,Low,Close,Volume,Dividends,Stock Splits``,
    dates like ``2020-01-02 00:00:00+08:00``, closes already adjusted) and ``download()``
    (``Date,Open,High,Low,Close,Adj Close,Volume``), including download's two-row
    ``Price``/``Ticker`` header. The symbol comes from the file name unless given.
    """
    p = Path(path)
    try:
        raw = p.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise PriceFileError(f"{p}: cannot read: {e}") from None
    lines = raw.splitlines()
    header_rows = 1
    if len(lines) >= 2 and lines[0].startswith("Price,") and lines[1].startswith("Ticker,"):
        tickers = {t for t in lines[1].split(",")[1:] if t}
        if len(tickers) != 1:
            raise PriceFileError(f"{p}: holds several tickers ({', '.join(sorted(tickers))}); "
                                 "export one symbol per file")
        symbol = symbol or tickers.pop()
        lines = ["Date" + lines[0][len("Price"):]] + [ln for ln in lines[2:] if not ln.startswith("Date,")]
        header_rows = 3
    symbol = symbol or symbol_from_filename(p)
    sec = parse_symbol(symbol)
    if sec is None:
        raise PriceFileError(f"{p}: '{symbol}' is not a symbol; pass --symbol")
    symbol = sec.symbol  # the Yahoo symbol: 03690.HK -> 3690.HK, ^SPX -> ^GSPC
    try:
        df = pd.read_csv(io.StringIO("\n".join(lines)), dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as e:
        raise PriceFileError(f"{p}: not a CSV file: {e}") from None
    df.columns = [c.strip() for c in df.columns]
    missing = [c for c in ("Date", "Open", "High", "Low", "Close", "Volume") if c not in df.columns]
    if missing:
        raise PriceFileError(f"{p}: missing columns: {', '.join(missing)} "
                             f"(expected yfinance's Date,Open,High,Low,Close[,Adj Close],Volume)")
    if df.empty:
        raise PriceFileError(f"{p}: has no rows")
    line_of = pd.Series(range(header_rows + 1, header_rows + 1 + len(df)), index=df.index)

    bad_dates = ~df["Date"].str.strip().str.match(_DATE_PREFIX)
    if bad_dates.any():
        i = bad_dates.idxmax()
        raise PriceFileError(f"{p}: bad date {df.at[i, 'Date']!r} at line {line_of[i]}")
    dates = pd.to_datetime(df["Date"].str.strip().str[:10], format="%Y-%m-%d", errors="coerce")
    if dates.isna().any():
        i = dates.isna().idxmax()
        raise PriceFileError(f"{p}: bad date {df.at[i, 'Date']!r} at line {line_of[i]}")

    value_cols = ["Open", "High", "Low", "Close", "Volume"] + (["Adj Close"] if "Adj Close" in df else [])
    numbers = {}
    for col in value_cols:
        text = df[col].str.strip()
        values = pd.to_numeric(text, errors="coerce")
        bad = values.isna() & (text != "") & ~text.str.lower().isin(["nan", "null"])
        if bad.any():
            i = bad.idxmax()
            raise PriceFileError(f"{p}: bad number {df.at[i, col]!r} in column {col} at line {line_of[i]}")
        numbers[col] = values
    frame = pd.DataFrame(numbers)
    frame["Date"] = dates.dt.date
    frame = frame[frame["Close"].notna()]  # holidays exported as empty rows
    dup = frame["Date"].duplicated(keep=False)
    if dup.any():
        first = frame.loc[dup, "Date"].iloc[0]
        lines_dup = ", ".join(str(line_of[i]) for i in frame.index[frame["Date"] == first])
        raise PriceFileError(f"{p}: duplicate date {first} (lines {lines_dup})")
    out = frame.set_index("Date")
    out.index = pd.DatetimeIndex(out.index)
    normalized = normalize(out, symbol)
    why = impossible_rows(normalized)
    if why.notna().any():
        bad = why[why.notna()]
        line = line_of[frame.index[frame["Date"] == bad.index[0]][0]]
        more = f" (and {len(bad) - 1} more such rows)" if len(bad) > 1 else ""
        raise PriceFileError(f"{p}: impossible row at line {line} ({bad.index[0]}): {bad.iloc[0]}{more}")
    return symbol, normalized


class CsvFolderSource:
    """Prices from a folder of yfinance CSV exports named by symbol (``3690.HK.csv``)."""

    name = "csv"

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.files: dict[str, Path] = {}
        for p in sorted(self.folder.glob("*.csv")):
            sec = parse_symbol(symbol_from_filename(p))
            if sec is not None:  # ^SPX.csv answers for ^GSPC
                self.files.setdefault(sec.symbol, p)

    def fetch(self, symbols: Sequence[str], start: date, end: date) -> FetchResult:
        result = FetchResult()
        for symbol in dict.fromkeys(symbols):
            sec = parse_symbol(symbol)
            path = self.files.get(sec.symbol) if sec is not None else None
            if path is None:
                result.failures[symbol] = PriceFailure(symbol, "no_data", f"no file {symbol}.csv in {self.folder}")
                continue
            try:
                _, frame = read_price_csv(path, symbol)
            except PriceFileError as e:
                result.failures[symbol] = PriceFailure(symbol, "bad_file", str(e))
                continue
            part = frame[(frame.index >= start) & (frame.index <= end)]
            if part.empty:
                result.failures[symbol] = PriceFailure(symbol, "no_data",
                                                       f"{path.name} has no prices from {start} to {end}")
            else:
                result.frames[symbol] = part
        return result
