"""cdmTable and cdmField are answered from the tables and columns the run read once
(runner.existence_outcomes): the same outcome as their queries, present or missing."""

from __future__ import annotations

from rwe_assets.lib.dqd_spec import applicable_checks
from rwe_assets.lib.quality import runner
from rwe_assets.lib.quality.database import Database, NotApplicable
from rwe_assets.lib.quality.planner import plan_check
from rwe_assets_tests.lib.quality.test_dqd import TODAY, clean_cdm


def test_the_lookup_answers_as_the_queries_do():
    con = clean_cdm()
    con.execute("DROP TABLE cdm.note_nlp")
    con.execute("ALTER TABLE cdm.person DROP COLUMN ethnicity_source_value")
    db = Database.open(con, "cdm", "cdm", TODAY)
    checks = [c for c in applicable_checks() if c.check_name in ("cdmTable", "cdmField")]
    plans = []
    for check in checks:
        try:
            plans.append(plan_check(check, db))
        except NotApplicable as na:
            plans.append(na)
    looked_up = runner.existence_outcomes(db, plans)
    queried = runner.execute_all(con, plans)
    assert len(looked_up) == sum(1 for p in plans if not isinstance(p, NotApplicable)) > 400
    answers = {i: (o.violated, o.denominator) for i, o in looked_up.items()}
    assert answers == {i: (queried[i].violated, queried[i].denominator) for i in looked_up}
    missing = {checks[i].table + "." + (checks[i].field or "") for i, (v, _) in answers.items() if v}
    assert {"note_nlp.", "person.ethnicity_source_value"} <= missing
