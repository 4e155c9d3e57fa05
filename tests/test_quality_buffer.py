"""Quality rows wait for a flush as QUALITY_ROW arrays (compact), and reach Parquet unchanged."""
import json

import numpy as np

from appliance.compactor.parquet_sink import quality_table
from appliance.compactor.schema import GRADES, QUALITY_COLUMNS, QUALITY_ROW
from appliance.compactor.spool import quality_array, quality_entries
from appliance.compactor.staging import Staging

DAY = 86_400 * 10**9
T = 20_000 * DAY + 3_600 * 10**9           # 1 h into a UTC day


def graded(inst, code, reasons, ts):
    """A row as VenueQuality.grades() makes it (with the keys the buffer drops)."""
    return {"ts_recv": ts, "instrument": inst, "venue": "binance", "grade": GRADES[code], "grade_code": code,
            "reasons": reasons, "msg_rate": 12.5, "staleness_ns": 7_000_000, "skew_p50_ns": 1_000,
            "skew_p99_ns": 9_000, "gaps": 2, "resyncs": 1, "reconnects": 0, "out_of_order": 0,
            "crossed": 3, "wicks": 0, "lost": 4, "late_trades": 5}


def test_rows_are_compact_and_keep_every_value():
    rows = [graded(7, 2, "gaps 2; crossed books 3", T), graded(8, 0, "", T)]
    arr = quality_array(rows)
    assert arr.dtype == QUALITY_ROW and arr.dtype.itemsize < 160
    assert arr["grade"].tolist() == [2, 0] and arr["reasons"].tolist() == ["gaps 2; crossed books 3", ""]
    assert arr["lost"].tolist() == [4, 4] and arr["msg_rate"].tolist() == [12.5, 12.5]


def test_entries_sorted_split_by_day_and_written_as_graded(tmp_path):
    later = [graded(9, 3, "stale: no data yet", T + DAY), graded(7, 1, "resyncs 1", T + 60 * 10**9)]
    parts = [quality_array([graded(7, 2, "gaps 2", T + 120 * 10**9)]), quality_array(later), quality_array([])]
    entries = quality_entries(Staging(str(tmp_path)), "binance", parts)
    assert [e["rows"] for e in entries] == [2, 1]                       # two UTC days
    first = json.loads(json.dumps(entries[0]))                         # as the writer reads its manifest
    assert first["instruments"] == [7]
    table = quality_table(first["quality_columns"], {7: "BTCUSDT", 9: "ETHUSDT"}.get).to_pydict()
    assert table["ts_recv"] == [T + 60 * 10**9, T + 120 * 10**9]          # sorted by ts_recv
    assert table["grade"] == ["good", "degraded"] and table["reasons"] == ["resyncs 1", "gaps 2"]
    assert table["symbol"] == ["BTCUSDT", "BTCUSDT"]
    for n in QUALITY_COLUMNS[4:]:
        assert table[n] == [graded(0, 0, "", 0)[n]] * 2, n
    second = entries[1]
    assert second["instruments"] == [9] and second["quality_columns"]["grade"] == ["limited"]
    assert second["final"].endswith(f"{T + DAY}_{T + DAY + 1}.parquet")
    assert np.all(np.diff(first["quality_columns"]["ts_recv"]) > 0)
