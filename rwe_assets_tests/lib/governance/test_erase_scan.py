"""test_erase.py's scan, the erasure test's witness: it finds every needle a file holds, needles that
overlap in the text or sit in a gzip member included, and reports nothing where none is."""

from __future__ import annotations

import gzip

from rwe_assets_tests.lib.governance.test_erase import scan


def test_scan_finds_overlapping_needles_each_and_nothing_where_none_is(tmp_path):
    data = tmp_path / "data"
    (data / "lake").mkdir(parents=True)
    (data / "lake" / "a.json").write_bytes(b'{"v": "XXXY-123-45-6789-ZZZZ"}')
    (data / "lake" / "b.gz").write_bytes(gzip.compress(b"name Larue605 here"))
    (data / "lake" / "c.txt").write_bytes(b"nothing of theirs")
    (data / "landing").mkdir()
    (data / "landing" / "sent.csv").write_bytes(b"Larue605")  # the sender's copy is not scanned
    # the first two overlap ("-45-6789" starts inside "XXXY-123-45"): a single left-to-right pass of
    # all the needles would take the first and step over the second
    needles = {"XXXY-123-45", "123-45-6789-ZZZZ", "Larue605", "absent-000001"}
    assert sorted(scan(data, needles)) == [
        ("lake/a.json", "123-45-6789-ZZZZ"),
        ("lake/a.json", "XXXY-123-45"),
        ("lake/b.gz", "Larue605"),
    ]
    assert scan(data, {"absent-000001"}) == []
