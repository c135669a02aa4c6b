"""Incidence and survival on cohorts of cdm.cohort: incidence rates per 1,000 person-years with exact
Poisson confidence intervals by age group and sex, and Kaplan-Meier curves with a log-rank test.

Incidence (`incidence_table`): each person's first entry into the target cohort (or, for the target
POPULATION, their first observation period) starts their time at risk, which ends at that entry's cohort end or at their first outcome, whichever comes first.
Persons whose first outcome starts before their target entry are prevalent cases: they are counted
(`prior_outcome`) and left out of the rate, never dropped silently. Age is the age in whole years at
target entry (entry year - year of birth); sex is the gender concept's name. The interval is the
exact (Garwood) Poisson interval from the chi-square quantiles: lower = chi2(a/2, 2k)/2,
upper = chi2(1-a/2, 2k+2)/2 events (scipy.stats.chi2, which lifelines brings in).

Survival (`survival_frame`, `kaplan_meier`): for every person in a population (a cohort, or everyone
with an observation period), time from an origin (birth, or the population entry) to the first
outcome, censored at the end of their last observation period; two groups split by membership in
a group cohort (e.g. BRCA1 carriers). Kaplan-Meier, its confidence band (exponential Greenwood,
lifelines' default) and the log-rank test are lifelines': a well-kept, tested implementation of
exactly these estimators, so we do not write our own. `run_km` runs one `KmAnalysis` (outcome,
group and population cohorts, origin) end to end; `DEFAULT_KM_ANALYSES` are the bundled ones.

Written results (`write_incidence`, `write_km`) obey the small-cell rule of lib/analytics/disclosure.py:
a stratum whose persons or outcomes count is a small cell has that count, its rate and interval
blanked, and a KM row whose at-risk or event count is a small cell has those counts blanked.
"""

from __future__ import annotations

import base64
import io
import math
from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl

from rwe_assets.lib.analytics.disclosure import shown

DEFAULT_AGE_BREAKS = (0, 18, 45, 65)
DAYS_PER_YEAR = 365.25


def exact_poisson_interval(events: int, confidence: float = 0.95) -> tuple[float, float]:
    """The exact two-sided confidence interval of a Poisson count, in events."""
    # imported here, as lifelines is below: scipy.stats is about 1.2 CPU s of imports, which every
    # process loading the definitions (each `rwe` command, code server and run worker) paid up front
    from scipy.stats import chi2

    alpha = 1 - confidence
    lower = 0.0 if events == 0 else float(chi2.ppf(alpha / 2, 2 * events)) / 2
    upper = float(chi2.ppf(1 - alpha / 2, 2 * events + 2)) / 2
    return lower, upper


def _age_group_sql(breaks: tuple[int, ...]) -> str:
    cases = []
    for low, high in zip(breaks, (*breaks[1:], None), strict=True):
        label = f"{low}+" if high is None else f"{low}-{high - 1}"
        upper = "" if high is None else f" AND age < {int(high)}"
        cases.append(f"WHEN age >= {int(low)}{upper} THEN '{label}'")
    return f"CASE {' '.join(cases)} ELSE 'unknown' END"


POPULATION = 0  # target_cohort_id written for "everyone, from their first observation period"


def incidence_persons(
    con: duckdb.DuckDBPyConnection, target_id: int, outcome_id: int, breaks=DEFAULT_AGE_BREAKS
) -> pl.DataFrame:
    """One row per person of the target cohort (POPULATION: everyone, over their first observation
    period): age group, sex, days at risk, outcome (0/1), and whether an outcome preceded the entry."""
    if target_id == POPULATION:
        target = (
            "SELECT person_id AS subject_id, min(observation_period_start_date) AS t_start, "
            "arg_min(observation_period_end_date, observation_period_start_date) AS t_end "
            "FROM cdm.observation_period WHERE ? IS NOT NULL GROUP BY person_id"
        )
    else:
        target = (
            "SELECT subject_id, min(cohort_start_date) AS t_start, arg_min(cohort_end_date, cohort_start_date) AS t_end "
            "FROM cdm.cohort WHERE cohort_definition_id = ? GROUP BY subject_id"
        )
    sql = f"""
    WITH target AS ({target}),
    outcome AS (
        SELECT subject_id, min(cohort_start_date) AS o_start FROM cdm.cohort
        WHERE cohort_definition_id = ? GROUP BY subject_id),
    joined AS (
        SELECT t.subject_id, t.t_start, t.t_end, o.o_start,
               year(t.t_start) - p.year_of_birth AS age,
               coalesce(c.concept_name, 'unknown') AS sex
        FROM target t JOIN cdm.person p ON p.person_id = t.subject_id
        LEFT JOIN cdm.concept c ON c.concept_id = p.gender_concept_id
        LEFT JOIN outcome o USING (subject_id))
    SELECT subject_id AS person_id, {_age_group_sql(tuple(breaks))} AS age_group, sex,
           coalesce(o_start < t_start, false) AS prior_outcome,
           coalesce(o_start BETWEEN t_start AND t_end, false)::INTEGER AS outcome,
           datediff('day', t_start, CASE WHEN o_start BETWEEN t_start AND t_end THEN o_start ELSE t_end END)
               AS days_at_risk
    FROM joined
    """
    return con.execute(sql, [target_id, outcome_id]).pl()


def incidence_table(persons: pl.DataFrame, confidence: float = 0.95) -> pl.DataFrame:
    """Rates per 1,000 person-years by age group and sex, plus rows 'all' for each margin and the total."""
    at_risk = persons.filter(~pl.col("prior_outcome"))
    frames = []
    for keys in (["age_group", "sex"], ["age_group"], ["sex"], []):
        frame = at_risk.with_columns(*(pl.lit("all").alias(k) for k in ("age_group", "sex") if k not in keys))
        frames.append(
            frame.group_by(["age_group", "sex"]).agg(
                pl.len().alias("persons"),
                pl.col("outcome").sum().alias("outcomes"),
                (pl.col("days_at_risk").sum() / DAYS_PER_YEAR).alias("person_years"),
            )
        )
    table = pl.concat(frames).filter(pl.col("persons") > 0)
    bounds = [exact_poisson_interval(int(k), confidence) for k in table["outcomes"]]
    scale = 1000 / table["person_years"]
    prior = persons.filter(pl.col("prior_outcome")).height
    return table.with_columns(
        (table["outcomes"] * scale).alias("rate_per_1000py"),
        (pl.Series([b[0] for b in bounds]) * scale).alias("ci_lower"),
        (pl.Series([b[1] for b in bounds]) * scale).alias("ci_upper"),
        pl.lit(prior).alias("prior_outcome_persons"),
    ).sort(["age_group", "sex"])


def suppress_incidence(table: pl.DataFrame, minimum: int) -> pl.DataFrame:
    """Blank small cells: counts below the minimum, and the rate and interval they would reveal."""
    small_persons = pl.col("persons").map_elements(lambda n: not shown(n, minimum), return_dtype=pl.Boolean)
    small_outcomes = pl.col("outcomes").map_elements(lambda n: not shown(n, minimum), return_dtype=pl.Boolean)
    hide = small_persons | small_outcomes
    blanked = [
        pl.when(small_persons).then(None).otherwise(pl.col("persons")).alias("persons"),
        *(
            pl.when(hide).then(None).otherwise(pl.col(c)).alias(c)
            for c in ("outcomes", "rate_per_1000py", "ci_lower", "ci_upper")
        ),
        hide.alias("suppressed"),
    ]
    return table.with_columns(blanked)


def write_incidence(
    con: duckdb.DuckDBPyConnection, target_id: int, outcome_id: int, table: pl.DataFrame, minimum: int
) -> pl.DataFrame:
    """Replace results.incidence_rate rows of (target, outcome) with the suppressed table."""
    shared = suppress_incidence(table, minimum).with_columns(
        pl.lit(target_id).alias("target_cohort_id"), pl.lit(outcome_id).alias("outcome_cohort_id")
    )
    columns = [
        "target_cohort_id",
        "outcome_cohort_id",
        "age_group",
        "sex",
        "persons",
        "outcomes",
        "person_years",
        "rate_per_1000py",
        "ci_lower",
        "ci_upper",
        "prior_outcome_persons",
        "suppressed",
    ]
    shared = shared.select(columns)
    con.execute("CREATE SCHEMA IF NOT EXISTS results")
    con.execute(
        "CREATE TABLE IF NOT EXISTS results.incidence_rate (target_cohort_id INTEGER, outcome_cohort_id INTEGER, "
        "age_group VARCHAR, sex VARCHAR, persons BIGINT, outcomes BIGINT, person_years DOUBLE, rate_per_1000py DOUBLE, "
        "ci_lower DOUBLE, ci_upper DOUBLE, prior_outcome_persons BIGINT, suppressed BOOLEAN)"
    )
    con.execute(
        "DELETE FROM results.incidence_rate WHERE target_cohort_id = ? AND outcome_cohort_id = ?",
        [target_id, outcome_id],
    )
    con.register("incidence_frame", shared.to_arrow())
    con.execute("INSERT INTO results.incidence_rate SELECT * FROM incidence_frame")
    con.unregister("incidence_frame")
    return shared


# ---------------------------------------------------------------- survival


def survival_frame(
    con: duckdb.DuckDBPyConnection,
    outcome_id: int,
    group_id: int,
    population_id: int | None = None,
    origin: str = "birth",
) -> pl.DataFrame:
    """One row per person: years from origin to the first outcome or censoring, event (0/1), and
    whether the person is in the group cohort. origin is 'birth' (age as time scale) or 'entry' (the
    population cohort's first start, or the first observation start when there is no population
    cohort). Persons whose outcome precedes their origin are left out and counted by the caller."""
    if origin not in ("birth", "entry"):
        raise ValueError(f"origin: expected 'birth' or 'entry', found {origin!r}")
    population = (
        "SELECT subject_id AS person_id, min(cohort_start_date) AS entry FROM cdm.cohort "
        f"WHERE cohort_definition_id = {int(population_id)} GROUP BY subject_id"
        if population_id is not None
        else "SELECT person_id, min(observation_period_start_date) AS entry FROM cdm.observation_period GROUP BY person_id"
    )
    birth = "make_date(p.year_of_birth, coalesce(p.month_of_birth, 7), coalesce(p.day_of_birth, 1))"
    start = birth if origin == "birth" else "pop.entry"
    sql = f"""
    WITH pop AS ({population}),
    follow AS (SELECT person_id, max(observation_period_end_date) AS last_seen FROM cdm.observation_period GROUP BY person_id),
    outcome AS (SELECT subject_id AS person_id, min(cohort_start_date) AS o_start FROM cdm.cohort
                WHERE cohort_definition_id = ? GROUP BY subject_id),
    grp AS (SELECT DISTINCT subject_id AS person_id FROM cdm.cohort WHERE cohort_definition_id = ?)
    SELECT pop.person_id, {start} AS origin_date, f.last_seen, o.o_start,
           grp.person_id IS NOT NULL AS in_group
    FROM pop JOIN cdm.person p USING (person_id) JOIN follow f USING (person_id)
    LEFT JOIN outcome o USING (person_id) LEFT JOIN grp USING (person_id)
    """
    frame = con.execute(sql, [outcome_id, group_id]).pl()
    event = pl.col("o_start").is_not_null() & (pl.col("o_start") <= pl.col("last_seen"))
    stop = pl.when(event).then(pl.col("o_start")).otherwise(pl.col("last_seen"))
    return frame.with_columns(
        event.cast(pl.Int8).alias("event"),
        ((stop - pl.col("origin_date")).dt.total_days() / DAYS_PER_YEAR).alias("years"),
        (pl.col("o_start") < pl.col("origin_date")).fill_null(False).alias("outcome_before_origin"),
    ).select("person_id", "in_group", "years", "event", "outcome_before_origin")


def km_labels(con: duckdb.DuckDBPyConnection, group_id: int, population_id: int | None) -> tuple[str, str]:
    """Legend labels: the group cohort's name, and 'others' in the population cohort's name."""
    names = dict(
        con.execute(
            "SELECT cohort_definition_id, cohort_definition_name FROM cdm.cohort_definition "
            "WHERE cohort_definition_id IN (?, ?)",
            [group_id, population_id or group_id],
        ).fetchall()
    )
    group = names.get(group_id) or f"cohort {group_id}"
    others = (
        f"others in {names.get(population_id) or f'cohort {population_id}'}" if population_id else "others"
    )
    return group, others


@dataclass(frozen=True)
class KaplanMeierResult:
    curve: pl.DataFrame  # group, years, survival, ci_lower, ci_upper, at_risk, events
    summary: pl.DataFrame  # group, persons, events, median_years
    logrank_p: float
    logrank_statistic: float
    excluded_outcome_before_origin: int
    png: bytes


def kaplan_meier(
    frame: pl.DataFrame,
    labels: tuple[str, str] = ("in group", "not in group"),
    title: str = "",
    xlabel: str = "years",
    min_group: int = 1,
) -> KaplanMeierResult:
    """Kaplan-Meier per group with 95% bands, the log-rank test between the two groups, and a PNG.
    A group with fewer than `min_group` persons is counted in the summary but not fitted, plotted or
    tested: its curve would show single persons' event times."""
    from lifelines import KaplanMeierFitter
    from lifelines.statistics import logrank_test

    usable = frame.filter(~pl.col("outcome_before_origin") & (pl.col("years") >= 0))
    curves, summaries, fitters, parts = [], [], [], []
    for flag, label in zip((True, False), labels, strict=True):
        part = usable.filter(pl.col("in_group") == flag)
        summary = {
            "group": label,
            "persons": part.height,
            "events": int(part["event"].sum()),
            "median_years": None,
        }
        summaries.append(summary)
        if part.is_empty() or part.height < min_group:
            continue
        fitter = KaplanMeierFitter(label=label).fit(part["years"].to_numpy(), part["event"].to_numpy())
        median = float(fitter.median_survival_time_)
        # lifelines writes a median the curve never reaches (it stays above 0.5) as infinity
        summary["median_years"] = median if math.isfinite(median) else None
        fitters.append(fitter)
        parts.append(part)
        curves.append(_curve_frame(fitter, label))
    p_value = statistic = float("nan")
    if len(parts) == 2:
        a, b = parts
        test = logrank_test(
            a["years"].to_numpy(), b["years"].to_numpy(), a["event"].to_numpy(), b["event"].to_numpy()
        )
        p_value, statistic = float(test.p_value), float(test.test_statistic)
    return KaplanMeierResult(
        pl.concat(curves) if curves else _curve_frame(None, ""),
        pl.DataFrame(summaries, schema_overrides={"median_years": pl.Float64}),
        p_value,
        statistic,
        frame.height - usable.height,
        _plot_png(fitters, title, p_value, xlabel),
    )


def _curve_frame(fitter, label: str) -> pl.DataFrame:
    """The fitted curve as rows; no fitter: the empty frame with the same columns."""
    columns = ["years", "survival", "ci_lower", "ci_upper"]
    if fitter is None:
        schema = {
            "group": pl.String,
            **dict.fromkeys(columns, pl.Float64),
            "at_risk": pl.Int64,
            "events": pl.Int64,
        }
        return pl.DataFrame(schema=schema)
    survival = fitter.survival_function_.iloc[:, 0]
    band = fitter.confidence_interval_survival_function_
    table = fitter.event_table
    return pl.DataFrame(
        {
            "group": label,
            "years": survival.index.to_numpy(dtype=float),
            "survival": survival.to_numpy(dtype=float),
            "ci_lower": band.iloc[:, 0].to_numpy(dtype=float),
            "ci_upper": band.iloc[:, 1].to_numpy(dtype=float),
            "at_risk": table["at_risk"].to_numpy(dtype="int64"),
            "events": table["observed"].to_numpy(dtype="int64"),
        }
    )


def _plot_png(fitters, title: str, p_value: float, xlabel: str) -> bytes:
    import matplotlib

    matplotlib.use("Agg")  # no display on a server or in tests
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 4.5), dpi=100)
    for fitter in fitters:
        fitter.plot_survival_function(ax=axis, ci_show=True)
    axis.set_xlabel(xlabel)
    axis.set_ylabel("survival probability")
    axis.set_ylim(0, 1.02)
    test = (
        f"log-rank p = {p_value:.3g}"
        if p_value == p_value
        else "log-rank not computed: a group is too small to show"
    )
    axis.set_title(f"{title}  ({test})" if title else test)
    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return buffer.getvalue()


def write_km(
    con: duckdb.DuckDBPyConnection, analysis: str, result: KaplanMeierResult, minimum: int, plot_dir: Path
) -> Path:
    """Replace results.km_curve / km_summary rows of `analysis` (small cells blanked) and write the PNG."""
    small = lambda c: pl.col(c).map_elements(lambda n: not shown(n, minimum), return_dtype=pl.Boolean)  # noqa: E731
    curve = (
        result.curve.with_columns(
            *(pl.when(small(c)).then(None).otherwise(pl.col(c)).alias(c) for c in ("at_risk", "events"))
        )
        .with_columns(pl.lit(analysis).alias("analysis"))
        .select("analysis", *result.curve.columns)
    )
    summary = (
        result.summary.with_columns(
            *(pl.when(small(c)).then(None).otherwise(pl.col(c)).alias(c) for c in ("persons", "events")),
            pl.lit(result.logrank_p).alias("logrank_p"),
            pl.lit(result.logrank_statistic).alias("logrank_statistic"),
            pl.lit(result.excluded_outcome_before_origin).alias("excluded_outcome_before_origin"),
        )
        .with_columns(pl.lit(analysis).alias("analysis"))
        .select(
            "analysis",
            *result.summary.columns,
            "logrank_p",
            "logrank_statistic",
            "excluded_outcome_before_origin",
        )
    )
    con.execute("CREATE SCHEMA IF NOT EXISTS results")
    for name, frame in (("km_curve", curve), ("km_summary", summary)):
        con.register("km_frame", frame.to_arrow())
        con.execute(f"CREATE TABLE IF NOT EXISTS results.{name} AS SELECT * FROM km_frame WHERE false")
        con.execute(f"DELETE FROM results.{name} WHERE analysis = ?", [analysis])
        con.execute(f"INSERT INTO results.{name} SELECT * FROM km_frame")
        con.unregister("km_frame")
    plot_dir.mkdir(parents=True, exist_ok=True)
    path = plot_dir / f"km_{analysis}.png"
    tmp = path.with_suffix(".png.tmp")
    tmp.write_bytes(result.png)
    tmp.replace(path)
    return path


@dataclass(frozen=True)
class KmAnalysis:
    """One Kaplan-Meier analysis: time to the outcome cohort's first start, in the group cohort
    against the rest of the population cohort (None: everyone with an observation period)."""

    name: str
    outcome_id: int
    group_id: int
    population_id: int | None = None
    origin: str = "birth"


# The bundled analyses (cohorts in rwe_assets/cohorts/), age as the time scale:
DEFAULT_KM_ANALYSES = (
    # breast cancer (788): BRCA1/BRCA2 pathogenic variant carriers (9002) among tested women (9003)
    KmAnalysis("brca_breast_cancer", 788, 9002, 9003),
    # COPD (9004): ever smokers (9005) among persons with a recorded smoking status (9006)
    KmAnalysis("smoking_copd", 9004, 9005, 9006),
)


def run_km(
    con: duckdb.DuckDBPyConnection, analysis: KmAnalysis, minimum: int, plot_dir: Path
) -> tuple[KaplanMeierResult, int, Path]:
    """Fit, test, plot and write one analysis (small cells blanked); the result, persons, PNG path."""
    frame = survival_frame(
        con, analysis.outcome_id, analysis.group_id, analysis.population_id, analysis.origin
    )
    xlabel = "age (years)" if analysis.origin == "birth" else "years since entry"
    labels = km_labels(con, analysis.group_id, analysis.population_id)
    result = kaplan_meier(frame, labels, analysis.name, xlabel, min_group=minimum)
    return result, frame.height, write_km(con, analysis.name, result, minimum, plot_dir)


def png_markdown(png: bytes, alt: str) -> str:
    """Markdown embedding a PNG inline, for Dagster's MetadataValue.md."""
    return f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode('ascii')})"
