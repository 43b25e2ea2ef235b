"""A one-minute soak (benchmarks/soak.py): a writer and the server SIGKILLed every 15 s under
readers; no acknowledged write is lost and no request gets a 5xx.

The full ten-minute run records its figures in benchmarks/RESULTS.md; this is its short form.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_short_soak_loses_no_acknowledged_write_and_serves_no_5xx():
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "soak.py"), "--minutes", "1", "--readers", "4",
                             "--cli", "1", "--kill-every", "15", "--no-record"], cwd=ROOT, capture_output=True,
                            text=True, timeout=900)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    final = report["final"]
    assert report["writer_restarts"] >= 2
    assert final["acknowledged_writes"] > 0 and final["acknowledged_writes_lost"] == 0
    assert final["values_never_written"] == 0
    assert report["server_5xx"] == 0 and report["non_4xx_errors"] == 0, report["errors"]
    assert report["served_by_endpoint"].get("/search", 0) > 0 and report["served_by_endpoint"].get("/context", 0) > 0
    assert final["integrity"] == "ok" and final["faiss_agrees"] and final["in_sync_after_open"]
    assert final["converged"]
