"""The Achilles analyses as DuckDB SQL: one SELECT per analysis id, built from a few per-domain
templates; an analysis is kept only if the catalogue (``achilles_catalogue``) lists its id."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from rwe_assets.lib.analytics.achilles_catalogue import ACHILLES_VERSION, analysis_details
from rwe_assets.lib.sql_text import quote_identifier, quote_literal


@dataclass(frozen=True)
class Analysis:
    """One analysis: ``sql`` selects ``stratum_1..stratum_<strata>`` and ``count_value`` (counts) or
    the strata and ``v``, one row per value (distributions); ``tables`` it reads (skipped when one is
    missing)."""

    analysis_id: int
    strata: int
    sql: str
    tables: tuple[str, ...]
    dist: bool = False


@dataclass(frozen=True)
class Domain:
    """An event table and the columns the per-domain analyses read."""

    base: int  # 200 visits, 400 conditions, ...: analysis id = base + offset
    table: str
    concept: str
    start: str
    end: str | None = None
    type_concept: str | None = None
    source_concept: str | None = None
    visit_like: bool = False  # 2x2/2x3/2x21: persons by year/gender/decile, length of stay, start year


DOMAINS = (
    Domain(200, "visit_occurrence", "visit_concept_id", "visit_start_date", "visit_end_date",
           "visit_type_concept_id", "visit_source_concept_id", visit_like=True),
    Domain(400, "condition_occurrence", "condition_concept_id", "condition_start_date", "condition_end_date",
           "condition_type_concept_id", "condition_source_concept_id"),
    Domain(600, "procedure_occurrence", "procedure_concept_id", "procedure_date", "procedure_end_date",
           "procedure_type_concept_id", "procedure_source_concept_id"),
    Domain(700, "drug_exposure", "drug_concept_id", "drug_exposure_start_date", "drug_exposure_end_date",
           "drug_type_concept_id", "drug_source_concept_id"),
    Domain(800, "observation", "observation_concept_id", "observation_date", None,
           "observation_type_concept_id", "observation_source_concept_id"),
    Domain(900, "drug_era", "drug_concept_id", "drug_era_start_date", "drug_era_end_date"),
    Domain(1000, "condition_era", "condition_concept_id", "condition_era_start_date", "condition_era_end_date"),
    Domain(1300, "visit_detail", "visit_detail_concept_id", "visit_detail_start_date", "visit_detail_end_date",
           "visit_detail_type_concept_id", "visit_detail_source_concept_id", visit_like=True),
    Domain(1800, "measurement", "measurement_concept_id", "measurement_date", None,
           "measurement_type_concept_id", "measurement_source_concept_id"),
    Domain(2100, "device_exposure", "device_concept_id", "device_exposure_start_date", "device_exposure_end_date",
           "device_type_concept_id", "device_source_concept_id"),
)  # fmt: skip


def _month(column: str) -> str:
    return f"(year({column}) * 100 + month({column}))"


def _decile(column: str) -> str:
    return f"CAST(floor((year({column}) - p.year_of_birth) / 10) AS BIGINT)"


class _Builder:
    """Collects analyses whose id the catalogue lists, with the CDM schema written in."""

    def __init__(self, cdm: str):
        self.cdm = cdm
        self.known = analysis_details()
        self.analyses: list[Analysis] = []

    def t(self, table: str) -> str:
        return f"{self.cdm}.{quote_identifier(table)}"

    def add(self, analysis_id: int, strata: int, sql: str, tables: Iterable[str], dist: bool = False) -> None:
        if analysis_id in self.known:
            self.analyses.append(Analysis(analysis_id, strata, sql, tuple(tables), dist))

    def count(self, analysis_id: int, table: str, strata: Sequence[str], what: str = "count(*)",
              where: str = "", join_person: bool = False, tables: Iterable[str] = ()) -> None:  # fmt: skip
        """count_value = ``what`` over ``table`` grouped by the strata expressions."""
        cols = [f"{expr} AS stratum_{k}" for k, expr in enumerate(strata, start=1)]
        person = f" JOIN {self.t('person')} p USING (person_id)" if join_person else ""
        group = f" GROUP BY {', '.join(strata)}" if strata else ""
        sql = f"SELECT {', '.join([*cols, what + ' AS count_value'])} FROM {self.t(table)} e{person}"
        sql += f"{' WHERE ' + where if where else ''}{group}"
        self.add(analysis_id, len(strata), sql, (table, *(["person"] if join_person else []), *tables))

    def dist(self, analysis_id: int, strata: Sequence[str], value: str, source: str,
             tables: Iterable[str]) -> None:  # fmt: skip
        """A distribution of ``value`` over the rows of ``source`` (a FROM clause)."""
        cols = [f"{expr} AS stratum_{k}" for k, expr in enumerate(strata, start=1)]
        sql = f"SELECT {', '.join([*cols, f'({value}) AS v'])} FROM {source}"
        self.add(analysis_id, len(strata), sql, tables, dist=True)


def build_analyses(
    cdm_schema: str = "cdm", source_name: str | None = None, today: dt.date | None = None
) -> list[Analysis]:
    """Every analysis this CDM layout answers, in id order."""
    b = _Builder(".".join(quote_identifier(part) for part in cdm_schema.split(".")))
    _person_analyses(b, source_name, today or dt.date.today())
    _observation_period_analyses(b)
    for domain in DOMAINS:
        _domain_analyses(b, domain)
    _domain_specific_analyses(b)
    _death_analyses(b)
    _provider_care_site_analyses(b)
    _other_analyses(b)
    return sorted(b.analyses, key=lambda a: (a.analysis_id, a.dist))


def _person_analyses(b: _Builder, source_name: str | None, today: dt.date) -> None:
    name = (
        quote_literal(source_name)
        if source_name
        else f"(SELECT min(cdm_source_name) FROM {b.t('cdm_source')})"
    )
    strata = [name, quote_literal(ACHILLES_VERSION), quote_literal(today.isoformat())]
    b.add(
        0, 3,
        f"SELECT {strata[0]} AS stratum_1, {strata[1]} AS stratum_2, {strata[2]} AS stratum_3, "
        f"count(DISTINCT person_id) AS count_value FROM {b.t('person')}",
        ("person", "cdm_source"),
    )  # fmt: skip
    b.count(1, "person", [], "count(DISTINCT person_id)")
    for analysis_id, column in ((2, "gender_concept_id"), (3, "year_of_birth"), (4, "race_concept_id"),
                                (5, "ethnicity_concept_id")):  # fmt: skip
        b.count(analysis_id, "person", [column], "count(DISTINCT person_id)")
    b.count(10, "person", ["year_of_birth", "gender_concept_id"], "count(DISTINCT person_id)")
    b.count(11, "person", ["year_of_birth", "gender_concept_id"], "count(DISTINCT person_id)",
            where=f"person_id NOT IN (SELECT person_id FROM {b.t('death')})", tables=["death"])  # fmt: skip
    b.count(12, "person", ["race_concept_id", "ethnicity_concept_id"], "count(DISTINCT person_id)")


def _first_period(b: _Builder) -> str:
    """Each person's first observation period, with the person's demographics (FROM clause)."""
    return (
        f"(SELECT person_id, min(observation_period_start_date) AS op_start, "
        f"arg_min(observation_period_end_date, observation_period_start_date) AS op_end "
        f"FROM {b.t('observation_period')} GROUP BY person_id) e JOIN {b.t('person')} p USING (person_id)"
    )


def _observation_period_analyses(b: _Builder) -> None:
    first, tables = _first_period(b), ("observation_period", "person")
    age, length = "year(op_start) - p.year_of_birth", "(op_end - op_start)"
    for analysis_id, strata in ((101, [age]), (102, ["p.gender_concept_id", age])):
        b.add(analysis_id, len(strata), _grouped(strata, "count(DISTINCT person_id)", first), tables)
    b.dist(103, [], age, first, tables)
    b.dist(104, ["p.gender_concept_id"], age, first, tables)
    b.dist(105, [], length, first, tables)
    b.dist(106, ["p.gender_concept_id"], length, first, tables)
    b.dist(107, [f"CAST(floor(({age}) / 10) AS BIGINT)"], length, first, tables)
    b.add(
        108,
        1,
        _grouped([f"CAST(floor({length} / 30) AS BIGINT)"], "count(DISTINCT person_id)", first),
        tables,
    )
    op = b.t("observation_period")
    start, end = "observation_period_start_date", "observation_period_end_date"
    # Month indexes (year * 12 + month - 1) and years each period touches or covers whole.
    touched_months = f"SELECT person_id, {_month_index(start)} AS a, {_month_index(end)} AS b FROM {op}"
    whole_months = (
        f"SELECT person_id, {_month_index(start)} + (day({start}) > 1)::INTEGER AS a, "
        f"{_month_index(end)} - ({end} < last_day({end}))::INTEGER AS b FROM {op}"
    )
    whole_years = (
        f"SELECT person_id, year({start}) + ({start} > make_date(year({start}), 1, 1))::INTEGER AS a, "
        f"year({end}) - ({end} < make_date(year({end}), 12, 31))::INTEGER AS b FROM {op}"
    )
    touched_years = (
        f"SELECT person_id, p.gender_concept_id AS gender, p.year_of_birth AS yob, year({start}) AS a, "
        f"year({end}) AS b FROM {op} e JOIN {b.t('person')} p USING (person_id)"
    )
    month_of = "(i // 12) * 100 + i % 12 + 1"
    b.add(
        109,
        1,
        f"SELECT i AS stratum_1, persons AS count_value FROM ({_covered(whole_years)})",
        ["observation_period"],
    )
    b.add(
        110,
        1,
        f"SELECT {month_of} AS stratum_1, persons AS count_value FROM ({_covered(whole_months)})",
        ["observation_period"],
    )
    b.count(111, "observation_period", [_month(start)], "count(DISTINCT person_id)")
    b.count(112, "observation_period", [_month(end)], "count(DISTINCT person_id)")
    per_person = f"(SELECT person_id, count(*) AS periods FROM {op} GROUP BY person_id)"
    b.add(113, 1, _grouped(["periods"], "count(DISTINCT person_id)", per_person), ("observation_period",))
    by_year = _covered(touched_years, ("gender", "yob"))
    decile = "CAST(floor((i - yob) / 10) AS BIGINT)"
    b.add(
        116,
        3,
        _grouped(["i", "gender", decile], "sum(persons)", f"({by_year})"),
        ["observation_period", "person"],
    )
    b.add(
        117,
        1,
        f"SELECT {month_of} AS stratum_1, persons AS count_value FROM ({_covered(touched_months)})",
        ["observation_period"],
    )
    b.count(119, "observation_period", ["period_type_concept_id"])


def _month_index(column: str) -> str:
    return f"(year({column}) * 12 + month({column}) - 1)"


def _covered(spans: str, keys: Sequence[str] = ()) -> str:
    """Persons whose spans [a, b] (whole numbers: years or month indexes) include each i, per ``keys``:
    columns ``keys..., i, persons`` for every i with persons > 0. A sweep instead of a join of every
    period with every month: one person's overlapping or adjacent spans are merged first (so a person
    counts once), then +1 at each span's start and -1 after its end, summed in order of i."""
    lead = "".join(f"{key}, " for key in keys)
    part = ", ".join(["person_id", *keys])
    by_keys = f"PARTITION BY {', '.join(keys)} " if keys else ""
    join_keys = ", ".join([*keys, "i"])
    return (
        f"WITH spans AS ({spans}), "
        f"ordered AS (SELECT *, max(b) OVER (PARTITION BY {part} ORDER BY a, b ROWS BETWEEN UNBOUNDED PRECEDING "
        f"AND 1 PRECEDING) AS prev_end FROM spans WHERE a <= b), "
        f"islands AS (SELECT *, sum(CASE WHEN prev_end IS NULL OR a > prev_end + 1 THEN 1 ELSE 0 END) "
        f"OVER (PARTITION BY {part} ORDER BY a, b ROWS UNBOUNDED PRECEDING) AS island FROM ordered), "
        f"merged AS (SELECT {part}, min(a) AS a, max(b) AS b FROM islands GROUP BY {part}, island), "
        f"steps AS (SELECT {lead}i, sum(d) AS d FROM (SELECT {lead}a AS i, 1 AS d FROM merged "
        f"UNION ALL SELECT {lead}b + 1, -1 FROM merged) GROUP BY ALL), "
        f"grid AS (SELECT {lead}unnest(range(min(i), max(i))) AS i FROM steps{' GROUP BY ' + ', '.join(keys) if keys else ''}), "
        f"running AS (SELECT {lead}i, sum(coalesce(d, 0)) OVER ({by_keys}ORDER BY i ROWS UNBOUNDED PRECEDING) AS persons "
        f"FROM grid LEFT JOIN steps USING ({join_keys})) "
        f"SELECT * FROM running WHERE persons > 0"
    )


def _grouped(strata: Sequence[str], what: str, source: str) -> str:
    cols = [f"{expr} AS stratum_{k}" for k, expr in enumerate(strata, start=1)]
    group = f" GROUP BY {', '.join(strata)}" if strata else ""
    return f"SELECT {', '.join([*cols, what + ' AS count_value'])} FROM {source}{group}"


def _domain_analyses(b: _Builder, d: Domain) -> None:
    """The analyses every event table has, at base + offset (0 persons by concept, 1 records, ...)."""
    persons, tables = "count(DISTINCT person_id)", (d.table, "person")
    b.count(d.base, d.table, [d.concept], persons)
    b.count(d.base + 1, d.table, [d.concept])
    b.count(d.base + 2, d.table, [d.concept, _month(d.start)], persons)
    op = b.t("observation_period")
    in_period = (
        f"EXISTS (SELECT 1 FROM {op} o WHERE o.person_id = e.person_id AND e.{d.start} <= o.observation_period_end_date "
        f"AND coalesce(e.{d.end or d.start}, e.{d.start}) >= o.observation_period_start_date)"
    )
    per_person = f"(SELECT person_id, count(DISTINCT {d.concept}) AS n FROM {b.t(d.table)} e WHERE {in_period} GROUP BY person_id)"
    b.dist(d.base + 3, [], "n", per_person, (d.table, "observation_period"))
    strata = [d.concept, f"year({d.start})", "p.gender_concept_id", _decile(d.start)]
    b.count(d.base + 4, d.table, strata, "count(DISTINCT e.person_id)", join_person=True)
    if d.type_concept:
        b.count(d.base + 5, d.table, [d.concept, d.type_concept])
    first_year = f"(SELECT person_id, {d.concept}, min(year({d.start})) AS y FROM {b.t(d.table)} GROUP BY ALL) e JOIN {b.t('person')} p USING (person_id)"
    b.dist(d.base + 6, [d.concept, "p.gender_concept_id"], "y - p.year_of_birth", first_year, tables)
    outside = f"NOT EXISTS (SELECT 1 FROM {op} o WHERE o.person_id = e.person_id AND e.{d.start} BETWEEN o.observation_period_start_date AND o.observation_period_end_date)"
    b.count(d.base + 10, d.table, [], where=outside, tables=["observation_period"])
    if d.end:
        b.count(d.base + 11, d.table, [], where=f"{d.end} < {d.start}")
    b.count(d.base + 20, d.table, [_month(d.start)])
    if d.source_concept:
        b.count(d.base + 25, d.table, [d.source_concept])
    if d.visit_like:
        strata = [f"year({d.start})", "p.gender_concept_id", _decile(d.start)]
        b.count(d.base + 12, d.table, strata, "count(DISTINCT e.person_id)", join_person=True)
        b.dist(d.base + 13, [d.concept], f"{d.end} - {d.start}", f"{b.t(d.table)} e", (d.table,))
        b.count(d.base + 21, d.table, [f"year({d.start})"], persons)
    if d.base in (900, 1000):  # era length
        b.dist(d.base + 7, [d.concept], f"{d.end} - {d.start}", f"{b.t(d.table)} e", (d.table,))


def _domain_specific_analyses(b: _Builder) -> None:
    b.count(414, "condition_occurrence", ["condition_status_concept_id"])
    b.count(415, "condition_occurrence", ["condition_type_concept_id"])
    b.count(416, "condition_occurrence", ["condition_status_concept_id", "condition_type_concept_id"])
    for analysis_id, column in ((715, "days_supply"), (716, "refills"), (717, "quantity")):
        b.dist(analysis_id, ["drug_concept_id"], column, f"{b.t('drug_exposure')} e WHERE {column} IS NOT NULL",
               ("drug_exposure",))  # fmt: skip
    _value_analyses(b, 1800, "measurement", "measurement_concept_id", has_string=False)
    _value_analyses(b, 800, "observation", "observation_concept_id", has_string=True)
    m = b.t("measurement")
    for analysis_id, column in ((1815, "value_as_number"), (1816, "range_low"), (1817, "range_high")):
        b.dist(analysis_id, ["measurement_concept_id", "unit_concept_id"], column,
               f"{m} e WHERE {column} IS NOT NULL", ("measurement",))  # fmt: skip
    band = (
        "CASE WHEN value_as_number < range_low THEN 'Below Range Low' "
        "WHEN value_as_number > range_high THEN 'Above Range High' ELSE 'Within Range' END"
    )
    b.count(1818, "measurement", ["measurement_concept_id", "unit_concept_id", band],
            where="value_as_number IS NOT NULL AND range_low IS NOT NULL AND range_high IS NOT NULL")  # fmt: skip
    b.count(1811, "measurement", [], where="value_as_number IS NOT NULL")
    b.count(1819, "measurement", ["measurement_concept_id"], where="value_as_number IS NOT NULL")
    b.count(1821, "measurement", [], where="value_as_number IS NULL")
    b.count(1823, "measurement", ["measurement_concept_id", "operator_concept_id"])
    b.dist(815, ["observation_concept_id", "unit_concept_id"], "value_as_number",
           f"{b.t('observation')} e WHERE value_as_number IS NOT NULL", ("observation",))  # fmt: skip
    b.count(823, "observation", ["observation_concept_id", "qualifier_concept_id"])


def _value_analyses(b: _Builder, base: int, table: str, concept: str, has_string: bool) -> None:
    """x07 by concept and unit, x14 records without any value, x22 by concept and value concept, x26
    by value concept, x27 by unit (measurement and observation alike)."""
    b.count(base + 7, table, [concept, "unit_concept_id"])
    no_value = "value_as_number IS NULL AND coalesce(value_as_concept_id, 0) = 0"
    no_value += " AND coalesce(value_as_string, '') = ''" if has_string else ""
    b.count(base + 14, table, [], where=no_value)
    b.count(base + 22, table, [concept, "value_as_concept_id"])
    b.count(base + 26, table, ["value_as_concept_id"])
    b.count(base + 27, table, ["unit_concept_id"])


def _death_analyses(b: _Builder) -> None:
    persons = "count(DISTINCT person_id)"
    b.count(500, "death", ["cause_concept_id"], persons)
    b.count(501, "death", ["cause_concept_id"])
    b.count(502, "death", [_month("death_date")], persons)
    b.count(504, "death", ["year(death_date)", "p.gender_concept_id", _decile("death_date")],
            "count(DISTINCT e.person_id)", join_person=True)  # fmt: skip
    b.count(505, "death", ["death_type_concept_id"])
    source = f"{b.t('death')} e JOIN {b.t('person')} p USING (person_id)"
    b.dist(506, ["p.gender_concept_id"], "year(death_date) - p.year_of_birth", source, ("death", "person"))
    op = b.t("observation_period")
    outside = f"NOT EXISTS (SELECT 1 FROM {op} o WHERE o.person_id = e.person_id AND e.death_date BETWEEN o.observation_period_start_date AND o.observation_period_end_date)"
    b.count(510, "death", [], where=outside, tables=["observation_period"])
    # 511-515: days from death to the person's last record (Achilles: last date minus death date).
    for analysis_id, table, column in ((511, "condition_occurrence", "condition_start_date"),
                                       (512, "drug_exposure", "drug_exposure_start_date"),
                                       (513, "visit_occurrence", "visit_start_date"),
                                       (514, "procedure_occurrence", "procedure_date"),
                                       (515, "observation", "observation_date")):  # fmt: skip
        last = f"(SELECT person_id, max({column}) AS last_date FROM {b.t(table)} GROUP BY person_id)"
        b.dist(analysis_id, [], "l.last_date - d.death_date", f"{b.t('death')} d JOIN {last} l USING (person_id)",
               ("death", table))  # fmt: skip
    b.count(525, "death", ["cause_source_concept_id"])


def _provider_care_site_analyses(b: _Builder) -> None:
    """Providers by specialty (300-325) and persons, visits and care sites by place of service
    (1200-1203), joined as Achilles joins them (a row without a match is not counted)."""
    b.count(300, "provider", [], "count(DISTINCT provider_id)")
    b.count(301, "provider", ["specialty_concept_id"], "count(DISTINCT provider_id)")
    seen = f"{b.t('provider')} p JOIN {b.t('visit_occurrence')} v ON v.provider_id = p.provider_id"
    b.add(303, 2, _grouped(["p.specialty_concept_id", "v.visit_concept_id"], "count(*)", seen),
          ("provider", "visit_occurrence"))  # fmt: skip
    b.count(325, "provider", ["specialty_source_concept_id"])

    def at_site(table: str) -> str:
        return (
            f"{b.t(table)} e JOIN {b.t('care_site')} cs ON cs.care_site_id = e.care_site_id "
            "WHERE cs.place_of_service_concept_id IS NOT NULL"
        )

    place = ["cs.place_of_service_concept_id"]
    b.add(1200, 1, _grouped(place, "count(e.person_id)", at_site("person")), ("person", "care_site"))
    b.add(
        1201, 1, _grouped(place, "count(*)", at_site("visit_occurrence")), ("visit_occurrence", "care_site")
    )
    b.count(
        1202, "care_site", ["place_of_service_concept_id"], where="place_of_service_concept_id IS NOT NULL"
    )
    # v5.4 renamed Achilles's discharge_to_concept_id to discharged_to_concept_id
    b.count(1203, "visit_occurrence", ["discharged_to_concept_id"], where="discharged_to_concept_id <> 0")


def _other_analyses(b: _Builder) -> None:
    """Data density (2000-2003: persons with records in several domains), locations and notes."""

    def persons_in(table: str) -> str:
        return f"person_id IN (SELECT person_id FROM {b.t(table)})"

    combos = {
        2000: ("condition_occurrence", "drug_exposure"),
        2001: ("condition_occurrence", "procedure_occurrence"),
        2002: ("measurement", "condition_occurrence", "drug_exposure"),
        2003: ("visit_occurrence",),
    }
    for analysis_id, tables in combos.items():
        where = " AND ".join(persons_in(t) for t in tables)
        b.count(analysis_id, "person", [], "count(*)", where=where, tables=tables)
    located = f"{b.t('person')} e JOIN {b.t('location')} l USING (location_id)"
    b.add(1100, 1, _grouped(["left(l.zip, 3)"], "count(DISTINCT e.person_id)", located + " WHERE l.zip IS NOT NULL"),
          ("person", "location"))  # fmt: skip
    b.add(1101, 1, _grouped(["l.state"], "count(DISTINCT e.person_id)", located + " WHERE l.state IS NOT NULL"),
          ("person", "location"))  # fmt: skip
    b.count(2200, "note", ["note_type_concept_id"], "count(DISTINCT person_id)")
    b.count(2201, "note", ["note_type_concept_id"])
