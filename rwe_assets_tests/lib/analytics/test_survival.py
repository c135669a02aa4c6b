"""Incidence rates and Kaplan-Meier against hand computation on hand-built cohorts."""

from __future__ import annotations

import datetime as dt

import duckdb
import numpy as np
import polars as pl
import pytest

from rwe_assets.lib.analytics.survival import (
    POPULATION,
    exact_poisson_interval,
    incidence_persons,
    incidence_table,
    kaplan_meier,
    survival_frame,
    write_incidence,
    write_km,
)
from rwe_assets_tests.lib.analytics.test_cohorts import D, add, person, tiny_cdm

TARGET, OUTCOME, GROUP = 1, 2, 3
FEMALE, MALE = 8532, 8507


def cohort(con, cid: int, pid: int, start: str, end: str) -> None:
    con.execute("INSERT INTO cdm.cohort VALUES (?, ?, ?, ?)", [cid, pid, D(start), D(end)])


@pytest.fixture
def con():
    connection = tiny_cdm()
    yield connection
    connection.close()


def test_exact_poisson_interval_matches_published_values():
    # Garwood intervals as tabulated (e.g. Ulm 1990): k=0 -> (0, 3.689), k=1 -> (0.0253, 5.572), k=10 -> (4.795, 18.39)
    assert exact_poisson_interval(0) == pytest.approx((0.0, 3.6889), abs=1e-3)
    assert exact_poisson_interval(1) == pytest.approx((0.02532, 5.5716), abs=1e-3)
    assert exact_poisson_interval(10) == pytest.approx((4.7954, 18.390), abs=1e-3)


def _incidence_population(con) -> None:
    """Five women aged 30-ish and one man aged 70; two outcomes at risk, one prevalent case."""
    for pid, gender, year in (
        (1, FEMALE, 1990),
        (2, FEMALE, 1990),
        (3, FEMALE, 1991),
        (4, FEMALE, 1989),
        (5, MALE, 1950),
        (6, FEMALE, 1990),
    ):
        person(con, pid, [("2019-01-01", "2022-12-31")], gender=gender, year=year)
        cohort(con, TARGET, pid, "2020-01-01", "2021-12-31")  # 730 days at risk unless an outcome comes
    cohort(con, TARGET, 1, "2022-03-01", "2022-06-01")  # a second entry: only the first counts
    cohort(con, OUTCOME, 1, "2020-07-01", "2020-07-02")  # 182 days at risk
    cohort(con, OUTCOME, 5, "2021-01-01", "2021-01-02")  # 366 days
    cohort(con, OUTCOME, 6, "2019-05-01", "2019-05-02")  # before the target entry: prevalent
    cohort(con, OUTCOME, 2, "2022-05-01", "2022-05-02")  # after time at risk: no event


def test_incidence_by_age_and_sex_against_hand_computation(con):
    _incidence_population(con)
    table = incidence_table(incidence_persons(con, TARGET, OUTCOME))
    total = table.filter((pl.col("age_group") == "all") & (pl.col("sex") == "all")).row(0, named=True)
    days = 182 + 730 * 3 + 366
    assert (total["persons"], total["outcomes"], total["prior_outcome_persons"]) == (5, 2, 1)
    assert total["person_years"] == pytest.approx(days / 365.25)
    assert total["rate_per_1000py"] == pytest.approx(2 / (days / 365.25) * 1000)
    low, high = exact_poisson_interval(2)
    assert (total["ci_lower"], total["ci_upper"]) == pytest.approx(
        (low / days * 365250, high / days * 365250)
    )
    women = table.filter((pl.col("age_group") == "18-44") & (pl.col("sex") == "FEMALE")).row(0, named=True)
    assert (women["persons"], women["outcomes"]) == (4, 1)
    assert women["person_years"] == pytest.approx((182 + 730 * 3) / 365.25)
    old = table.filter(pl.col("age_group") == "65+").filter(pl.col("sex") == "all").row(0, named=True)
    assert (old["persons"], old["outcomes"], old["ci_lower"] > 0) == (1, 1, True)


def test_written_incidence_blanks_small_cells(con):
    _incidence_population(con)
    table = incidence_table(incidence_persons(con, TARGET, OUTCOME))
    write_incidence(con, TARGET, OUTCOME, table, minimum=5)
    rows = con.execute(
        "SELECT age_group, sex, persons, outcomes, rate_per_1000py, person_years IS NOT NULL, suppressed "
        "FROM results.incidence_rate ORDER BY 1, 2"
    ).fetchall()
    total = next(r for r in rows if r[:2] == ("all", "all"))
    assert total[2:] == (5, None, None, True, True)  # 2 outcomes is a small cell; person-time stays
    assert all(r[2] is None or r[2] >= 5 for r in rows)
    write_incidence(con, TARGET, OUTCOME, table, minimum=1)  # replaces, does not append
    assert con.execute("SELECT count(*), count(outcomes) FROM results.incidence_rate").fetchone() == (
        len(rows),
        len(rows),
    )


def test_kaplan_meier_against_hand_computation():
    frame = pl.DataFrame(
        {
            "person_id": range(9),
            "in_group": [True] * 5 + [False] * 4,
            "years": [1.0, 2.0, 2.0, 3.0, 4.0, 1.5, 2.5, 5.0, 6.0],
            "event": [1, 1, 0, 1, 0, 0, 1, 0, 1],
            "outcome_before_origin": [False] * 9,
        }
    )
    result = kaplan_meier(frame, ("carriers", "non-carriers"))
    carriers = result.curve.filter(pl.col("group") == "carriers")
    survival = dict(zip(carriers["years"], carriers["survival"], strict=True))
    # S(1) = 4/5; S(2) = 4/5 * 3/4 (one event, one censored of 4 at risk); S(3) = 0.6 * 1/2; flat to 4
    assert [survival[t] for t in (1.0, 2.0, 3.0, 4.0)] == pytest.approx([0.8, 0.6, 0.3, 0.3])
    assert (carriers["ci_lower"] <= carriers["survival"]).all() and (
        carriers["survival"] <= carriers["ci_upper"]
    ).all()
    assert result.summary.filter(pl.col("group") == "carriers")["median_years"][0] == 3.0
    assert result.logrank_statistic == pytest.approx(_logrank_by_hand(frame), rel=1e-9)
    assert result.png[:8] == b"\x89PNG\r\n\x1a\n"
    small = kaplan_meier(frame, ("carriers", "non-carriers"), min_group=5)  # 4 non-carriers: not drawn
    assert small.curve["group"].unique().to_list() == ["carriers"]
    assert small.summary.rows() == [("carriers", 5, 3, 3.0), ("non-carriers", 4, 2, None)]
    assert small.logrank_p != small.logrank_p  # NaN: no test against a group that is not shown


def _logrank_by_hand(frame: pl.DataFrame) -> float:
    """(O - E)^2 / V for the first group, summed over the distinct event times."""
    years, event, group = (frame[c].to_numpy() for c in ("years", "event", "in_group"))
    observed = expected = variance = 0.0
    for t in np.unique(years[event == 1]):
        at_risk = years >= t
        n, n1 = at_risk.sum(), (at_risk & group).sum()
        d = ((years == t) & (event == 1)).sum()
        d1 = ((years == t) & (event == 1) & group).sum()
        observed += d1
        expected += d * n1 / n
        variance += d * (n1 / n) * (1 - n1 / n) * (n - d) / (n - 1) if n > 1 else 0.0
    return (observed - expected) ** 2 / variance


def test_survival_frame_censors_at_last_observation_and_uses_age(con, tmp_path):
    person(con, 1, [("2000-01-01", "2005-12-31"), ("2010-01-01", "2020-12-31")], year=1980)
    person(con, 2, [("2000-01-01", "2020-12-31")], year=1980)
    person(con, 3, [("2000-01-01", "2020-12-31")], year=1980)
    cohort(con, OUTCOME, 2, "2010-07-01", "2010-07-02")
    cohort(con, OUTCOME, 3, "2025-01-01", "2025-01-02")  # after follow-up ends: censored
    cohort(con, GROUP, 2, "2000-01-01", "2000-01-02")
    frame = survival_frame(con, OUTCOME, GROUP).sort("person_id")
    born = dt.date(1980, 7, 1)  # year of birth only: mid-year
    assert frame["event"].to_list() == [0, 1, 0]
    assert frame["in_group"].to_list() == [False, True, False]
    assert frame["years"].to_list() == pytest.approx(
        [
            (D("2020-12-31") - born).days / 365.25,
            (D("2010-07-01") - born).days / 365.25,
            (D("2020-12-31") - born).days / 365.25,
        ]
    )
    entry = survival_frame(con, OUTCOME, GROUP, origin="entry").sort("person_id")
    assert entry["years"][1] == pytest.approx((D("2010-07-01") - D("2000-01-01")).days / 365.25)
    result = kaplan_meier(frame, ("carriers", "non-carriers"), "test")
    path = write_km(con, "test", result, minimum=5, plot_dir=tmp_path / "plots")
    assert path.read_bytes() == result.png
    assert (
        con.execute("SELECT count(*), count(at_risk) FROM results.km_curve").fetchone()[1] == 0
    )  # all small cells
    assert con.execute("SELECT analysis, persons FROM results.km_summary ORDER BY 1").fetchall()[0] == (
        "test",
        None,
    )


# ---------------------------------------------------------------- the Dagster assets on a small population


def study_population(con, persons: int = 60) -> None:
    """Women born 1950-1979 observed 2000-2020, all tested in 2001; every third carries BRCA1
    c.5266dupC (Pathogenic); carriers get breast cancer in 2/3 of cases, others in 1/6; every fourth
    has type 2 diabetes. Even ids smoke (former), odd ids never did; every fourth gets COPD, and
    never smokers with id 10k + 1."""
    add(con, "target_gene", target_gene_id=1, hgnc_symbol="BRCA1")
    for pid in range(1, persons + 1):
        person(con, pid, [("2000-01-01", "2020-12-31")], year=1950 + pid % 30)
        add(con, "specimen", specimen_id=pid, person_id=pid, specimen_date=D("2001-01-01"))
        status = "Former smoker" if pid % 2 == 0 else "Never smoker"
        add(
            con,
            "observation",
            person_id=pid,
            observation_concept_id=43054909,
            observation_date=D("2002-01-01"),
            value_as_string=status,
        )
        if pid % 4 == 0 or pid % 10 == 1:
            add_condition(con, pid, 258780, f"{2004 + pid % 15}-05-01")
        carrier = pid % 3 == 0
        if carrier:
            fields = {
                "chromosome": "chr17",
                "position": 43057062,
                "reference_allele": "T",
                "alternate_allele": "TG",
            }
            hgvs = {"target_gene1_id": 1, "hgvs_c": "NM_007294.4:c.5266dupC"}
            add(
                con,
                "variant_occurrence",
                variant_occurrence_id=pid,
                person_id=pid,
                specimen_id=pid,
                **fields,
                **hgvs,
            )
            add(con, "variant_annotation", variant_occurrence_id=pid, variant_pathogeny="Pathogenic")
        if (carrier and pid % 2 == 0) or (carrier and pid % 5 == 0) or pid % 6 == 1:
            year = 2003 + pid % 17
            add_condition(con, pid, 4112853, f"{year}-03-01")
        if pid % 4 == 0:
            add_condition(con, pid, 201826, f"{2001 + pid % 19}-06-01")


def add_condition(con, pid: int, concept: int, start: str) -> None:
    con.execute(
        "INSERT INTO cdm.condition_occurrence (condition_occurrence_id, person_id, condition_concept_id, "
        "condition_start_date, condition_type_concept_id) VALUES "
        "((SELECT coalesce(max(condition_occurrence_id), 0) + 1 FROM cdm.condition_occurrence), ?, ?, ?, 32817)",
        [pid, concept, D(start)],
    )


def build_study(data_dir, run_config: dict | None = None) -> dict:
    """A small CDM as warehouse/build.duckdb, with every bundled cohort and the survival asset run."""
    import dagster as dg

    from rwe_assets.defs.analytics.cohorts import cohort_assets
    from rwe_assets.resources import RweConfig

    (data_dir / "warehouse").mkdir(parents=True)
    built = tiny_cdm(data_dir / "warehouse" / "build.duckdb")
    study_population(built)
    built.close()
    result = dg.materialize(
        cohort_assets, resources={"rwe": RweConfig(data_dir=str(data_dir))}, run_config=run_config
    )
    assert result.success
    metadata = {}
    for event in result.get_asset_materialization_events():
        materialization = event.event_specific_data.materialization
        metadata[materialization.asset_key.path[-1]] = materialization.metadata
    return metadata


def test_cohort_and_survival_assets_write_results_and_the_plot(tmp_path):
    metadata = build_study(tmp_path)
    assert {"cohort_503", "cohort_788", "cohort_9001", "cohort_9002", "incidence_survival"} <= set(metadata)
    assert metadata["cohort_9001"]["persons"].value == 20
    assert metadata["cohort_9002"]["persons"].value == 20
    assert (metadata["cohort_9003"]["persons"].value, metadata["cohort_9005"]["persons"].value) == (60, 30)
    survival = metadata["incidence_survival"]
    for name in ("brca_breast_cancer", "smoking_copd"):
        assert survival[f"km_plot_{name}"].value.startswith(f"![{name}](data:image/png;base64,")
        assert (tmp_path / "warehouse" / "plots" / f"km_{name}.png").stat().st_size > 1000
        assert survival[f"logrank_p_{name}"].value < 0.05
    con = duckdb.connect(str(tmp_path / "warehouse" / "build.duckdb"), read_only=True)
    ids = con.execute(
        "SELECT cohort_definition_id, count(*) FROM cdm.cohort GROUP BY 1 ORDER BY 1"
    ).fetchall()
    assert [i for i, _ in ids] == [503, 788, 9001, 9002, 9003, 9004, 9005, 9006]
    assert con.execute("SELECT count(*) FROM cdm.cohort_definition").fetchone() == (8,)
    summary = con.execute(
        'SELECT analysis, "group", persons, events FROM results.km_summary ORDER BY 1, 2'
    ).fetchall()
    assert summary == [
        ("brca_breast_cancer", "BRCA1/BRCA2 pathogenic variant carriers", 20, 12),  # 6k, 15, 45
        ("brca_breast_cancer", "others in Women with a germline genetic test", 40, 10),  # ids 6k + 1
        ("smoking_copd", "Ever smokers (current or former)", 30, 15),  # 4k
        ("smoking_copd", "others in Persons with a recorded tobacco smoking status", 30, 6),  # 10k + 1
    ]
    assert con.execute("SELECT count(*) FROM results.incidence_rate").fetchone()[0] > 0


def test_incidence_in_the_whole_population_uses_the_first_observation_period(con):
    _incidence_population(con)
    person(con, 7, [("2010-01-01", "2010-12-31"), ("2019-01-01", "2022-12-31")])  # first period, no outcome
    persons = incidence_persons(con, POPULATION, OUTCOME)
    total = (
        incidence_table(persons)
        .filter((pl.col("age_group") == "all") & (pl.col("sex") == "all"))
        .row(0, named=True)
    )
    ends = {
        1: "2020-07-01",
        2: "2022-05-01",
        3: "2022-12-31",
        4: "2022-12-31",
        5: "2021-01-01",
        6: "2019-05-01",
    }
    days = (
        sum((D(end) - D("2019-01-01")).days for end in ends.values()) + 364
    )  # person 7: 2010-01-01 to 12-31
    assert (total["persons"], total["outcomes"], total["prior_outcome_persons"]) == (7, 4, 0)
    assert total["person_years"] == pytest.approx(days / 365.25)


def test_km_analyses_are_run_config(tmp_path):
    """A configured list replaces the bundled analyses: here everyone observed (population 0), by
    the c.5266dupC cohort (9001), followed from their first observation."""
    custom = {"name": "custom", "outcome_cohort_id": 788, "group_cohort_id": 9001, "origin": "entry"}
    config = {"ops": {"analytics__incidence_survival": {"config": {"km_analyses": [custom]}}}}
    survival = build_study(tmp_path, config)["incidence_survival"]
    assert [k for k in survival if k.startswith("km_plot_path_")] == ["km_plot_path_custom"]
    con = duckdb.connect(str(tmp_path / "warehouse" / "build.duckdb"), read_only=True)
    assert con.execute('SELECT "group", persons FROM results.km_summary ORDER BY 1').fetchall() == [
        ("BRCA1 c.5266dupC carriers", 20),
        ("others", 40),
    ]
