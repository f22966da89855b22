"""The sampling frequency read from time stamps, checked against pandas' ``infer_freq`` where pandas names one."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from rnnkit.datasets.frequency import (
    Frequency,
    infer_frequency,
    missing_stamps,
    next_stamps,
    out_of_order,
    runs_backwards,
)

# pandas' frequency codes (the part before any "-": "QS-OCT" is quarterly) -> the name rnnkit gives
PANDAS_NAMES = {
    "MS": "monthly",
    "ME": "monthly",
    "QS": "quarterly",
    "QE": "quarterly",
    "YS": "yearly",
    "YE": "yearly",
    "D": "daily",
    "B": "business-daily",
    "W": "weekly",
    "h": "hourly",
    "30min": "half-hourly",
    "15min": "quarter-hourly",
}
SEASONS = {"monthly": 12, "quarterly": 4, "yearly": 1, "daily": 7, "business-daily": 5, "weekly": 52}
SEASONS.update({"hourly": 24, "half-hourly": 48, "quarter-hourly": 96})


def _pandas_name(index: pd.DatetimeIndex) -> str | None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        code = pd.infer_freq(index)
    code = getattr(code, "freqstr", code)
    return None if code is None else PANDAS_NAMES.get(code.split("-")[0])


@pytest.mark.parametrize(
    "code", ["MS", "ME", "QS-OCT", "QE", "YS", "D", "B", "W-SUN", "W-WED", "h", "30min", "15min"]
)
@pytest.mark.parametrize("start", ["1999-11-01", "2023-02-28 00:00"])
def test_frequency_agrees_with_pandas_on_regular_dates(code, start):
    index = pd.date_range(start, periods=60, freq=code)
    expected = _pandas_name(index)
    assert expected is not None  # the outside reference names it
    fine = index.hour.any() or index.minute.any()
    styles = (
        ["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M:%S"] if fine else ["%Y-%m-%d", "%Y/%m/%d", "%d/%m/%Y", "%m.%d.%Y"]
    )
    for style in styles:
        got = infer_frequency(list(index.strftime(style)))
        assert got == Frequency(expected, SEASONS[expected]), (code, style)


def test_other_ways_of_writing_months_quarters_years_and_weeks():
    months = pd.date_range("1949-01-01", periods=30, freq="MS")
    monthly = Frequency("monthly", 12)
    assert infer_frequency(list(months.strftime("%Y-%m"))) == monthly
    assert infer_frequency(list(months.strftime("%b %Y"))) == monthly  # zoo's yearmon: "Jan 1949"
    assert infer_frequency(list(months.strftime("%Y-%B"))) == monthly
    assert infer_frequency([f"{1949 + i / 12:.6f}" for i in range(30)]) == monthly  # R's time(): 1949.083333
    quarters = [f"{1990 + i // 4} Q{i % 4 + 1}" for i in range(12)]
    assert infer_frequency(quarters) == Frequency("quarterly", 4)
    assert infer_frequency([q.replace(" ", "-") for q in quarters]) == Frequency("quarterly", 4)
    assert infer_frequency([f"Q{i % 4 + 1} {1990 + i // 4}" for i in range(12)]) == Frequency("quarterly", 4)
    assert infer_frequency([f"{1990 + i / 4}" for i in range(12)]) == Frequency("quarterly", 4)
    assert infer_frequency([str(1871 + i) for i in range(20)]) == Frequency("yearly", 1)
    weeks = [f"2020-W{w:02d}" for w in range(1, 54)] + [f"2021-W{w:02d}" for w in range(1, 10)]
    assert infer_frequency(weeks) == Frequency("weekly", 52)  # 2020 has 53 ISO weeks
    with_zone = [f"2000-06-05T{h:02d}:00+01:00" for h in range(10)]
    assert infer_frequency(with_zone) == Frequency("hourly", 24)
    one_digit = [f"2020-{m}-1" for m in range(1, 13)]
    assert infer_frequency(one_digit) == monthly


def test_gaps_are_allowed_up_to_a_tenth_of_the_steps():
    days = pd.date_range("2020-01-01", periods=200, freq="D")
    few_gaps = np.delete(np.arange(200), [20, 50, 90, 150])  # 4 of 199 steps are two days
    assert infer_frequency(list(days[few_gaps].strftime("%Y-%m-%d"))) == Frequency("daily", 7)
    many_gaps = np.arange(0, 200, 1)[np.arange(200) % 4 != 0]  # a third of the steps are two days
    assert infer_frequency(list(days[many_gaps].strftime("%Y-%m-%d"))) is None
    trading = pd.date_range("2020-01-01", periods=300, freq="B")
    holidays = np.delete(np.arange(300), [10, 100, 101, 200])  # a 4-day weekend among them
    assert infer_frequency(list(trading[holidays].strftime("%Y-%m-%d"))) == Frequency("business-daily", 5)


def test_no_frequency_where_the_stamps_do_not_say_one():
    assert infer_frequency([str(i) for i in range(50)]) is None  # row numbers
    assert infer_frequency(["1990-01", "1990-02"]) is None  # too few to tell
    assert (
        infer_frequency(["2020-01-01", "2020-01-03", "2020-01-05", "2020-01-07"]) is None
    )  # no usual season
    assert infer_frequency(["2020-01", "2020-02", "2020-02-15", "2020-03"]) is None  # kinds mixed
    assert infer_frequency(["2020-03", "2020-02", "2020-01", "2019-12"]) is None  # decreasing
    assert infer_frequency(["a", "b", "c"]) is None
    assert infer_frequency(["1990-13", "1991-01", "1991-02"]) is None  # no month 13
    first_days = [f"{d:02d}/01/2020" for d in range(1, 13)]  # 1-12 January or the 1st of 12 months: no guess
    assert infer_frequency(first_days) is None
    assert infer_frequency(first_days + ["13/01/2020"]) == Frequency("daily", 7)  # the 13th settles it


def test_runs_backwards_only_for_dates_that_mostly_decrease():
    newest_first = list(pd.date_range("2020-01-01", periods=30, freq="D").strftime("%Y-%m-%d"))[::-1]
    assert runs_backwards(newest_first)
    assert not runs_backwards(newest_first[::-1])
    assert not runs_backwards([str(i) for i in range(30, 0, -1)])  # numbers that are not dates: not judged


@pytest.mark.parametrize("code", ["MS", "ME", "QS-OCT", "YS", "D", "B", "W-SUN", "h", "30min"])
def test_next_stamps_continue_as_pandas_date_range_does(code):
    index = pd.date_range("2019-11-01", periods=63, freq=code)
    fine = index.hour.any() or index.minute.any()
    for style in ["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M:%S"] if fine else ["%Y-%m-%d", "%d/%m/%Y", "%m/%d/%Y"]:
        written = list(index.strftime(style))
        assert next_stamps(written[:60], 3) == written[60:], (code, style)


def test_next_stamps_keep_how_the_stamps_are_written():
    assert next_stamps(["1959 Q2", "1959 Q3", "1959 Q4"], 2) == ["1960 Q1", "1960 Q2"]
    assert next_stamps(["Q3-1959", "Q4-1959", "Q1-1960"], 1) == ["Q2-1960"]
    assert next_stamps(["OCT 1949", "NOV 1949", "DEC 1949"], 2) == ["JAN 1950", "FEB 1950"]
    assert next_stamps(["October 1949", "November 1949", "December 1949"], 1) == ["January 1950"]
    assert next_stamps(["1949.750000", "1949.833333", "1949.916667"], 2) == ["1950.000000", "1950.083333"]
    assert next_stamps(["2020-W51", "2020-W52", "2020-W53"], 2) == ["2021-W01", "2021-W02"]
    assert next_stamps(["2020-01-31", "2020-02-29", "2020-03-31"], 2) == ["2020-04-30", "2020-05-31"]
    assert next_stamps(["2020-12-31", "2021-01-31", "2021-02-28"], 2) == ["2021-03-31", "2021-04-30"]
    assert next_stamps(["2020-12-28", "2021-01-28", "2021-02-28"], 1) == [
        "2021-03-28"
    ]  # the 28th, not an end
    assert next_stamps([str(i) for i in range(10)], 2) is None  # no frequency: the caller numbers the steps


def test_a_forecast_of_half_hourly_or_quarterly_data_is_stamped():
    from rnnkit.apps.timeseries.use import future_times

    half_hours = list(pd.date_range("2000-06-05", periods=96, freq="30min").strftime("%Y-%m-%dT%H:%M"))
    assert future_times(half_hours, 2) == ["2000-06-07T00:00", "2000-06-07T00:30"]  # was "+1", "+2"
    assert future_times(["2009 Q1", "2009 Q2", "2009 Q3"], 2) == ["2009 Q4", "2010 Q1"]
    assert future_times(["0", "1", "2"], 2) == ["3", "4"]  # step numbers continue as before
    assert future_times(["2020-01-01", "2020-01-03", "2020-01-05"], 2) == [
        "2020-01-07",
        "2020-01-09",
    ]  # no season
    assert future_times(["2019-01", "2019-07", "2020-01"], 2) == ["2020-07", "2021-01"]  # half-years
    assert future_times(["20200130", "20200131", "20200201"], 2) == ["20200202", "20200203"]  # compact dates
    assert future_times(["2020-01-31", "2020-02-29"], 1) == ["2020-03-31"]  # month ends, not 29 March
    assert future_times(["9999-10", "9999-11", "9999-12"], 2) == ["+1", "+2"]  # past the year 9999
    assert future_times(["a", "b", "c"], 2) == ["+1", "+2"]


@pytest.mark.parametrize("code", ["MS", "ME", "QS-OCT", "YS", "D", "W-SUN", "h"])
def test_the_stamps_a_gap_leaves_out_are_pandas_own(code):
    index = pd.date_range("2001-03-01", periods=80, freq=code)
    fine = index.hour.any() or index.minute.any()
    for style in ["%Y-%m-%dT%H:%M"] if fine else ["%Y-%m-%d", "%d/%m/%Y"]:
        written = list(index.strftime(style))
        kept = [t for i, t in enumerate(written) if i not in (5, 6, 40)]
        assert missing_stamps(kept) == [(4, written[5:7]), (37, [written[40]])], (code, style)
        assert missing_stamps(written) == []
    trading = list(pd.date_range("2020-01-01", periods=60, freq="B").strftime("%Y-%m-%d"))
    assert missing_stamps(trading) == []  # weekends are not gaps
    assert missing_stamps([str(i) for i in range(0, 40, 2)]) == []  # row numbers: no dates


def test_month_names_with_a_day_and_stamps_out_of_order():
    months = pd.date_range("1995-01-01", periods=30, freq="MS")
    for style in ("%b-%d-%Y", "%d-%b-%Y", "%B %d, %Y", "%d %b %Y"):  # statsmodels' elec_equip: Jan-01-1995
        assert infer_frequency(list(months.strftime(style))) == Frequency("monthly", 12), style
    assert infer_frequency(["Jan-1-1995", "Feb-1-1995", "Mar-1-1995", "Apr-1-1995"]) == Frequency(
        "monthly", 12
    )
    assert infer_frequency(["Foo-1-1995", "Feb-1-1995", "Mar-1-1995"]) is None
    assert out_of_order(["2001-01", "2001-02", "2001-03"]) is None
    assert out_of_order(["2001-01", "2001-03", "2001-02", "2001-04"]) == 2
    assert out_of_order(["1990", "1991", "1991", "1992"]) == 2
    assert out_of_order(["3", "1", "2"]) is None  # row numbers are not judged
