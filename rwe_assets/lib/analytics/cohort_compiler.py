"""The cohort compiler: a Circe cohort expression (the supported subset, ``cohorts``) to one DuckDB
query over the CDM returning subject_id, cohort_start_date and cohort_end_date. Anything outside the
subset raises UnsupportedCohortConstruct naming it and where it is."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rwe_assets.lib.analytics.cohort_refusal import UnsupportedCohortConstruct, only_keys
from rwe_assets.lib.analytics.cohort_variants import variant_events_sql
from rwe_assets.lib.sql_text import quote_literal

# (table, id column, concept column, start date, end date expression) per Circe domain criterion.
_DOMAINS = {
    "ConditionOccurrence": (
        "condition_occurrence",
        "condition_occurrence_id",
        "condition_concept_id",
        "condition_start_date",
        "coalesce(condition_end_date, condition_start_date + 1)",
    ),
    "DrugExposure": (
        "drug_exposure",
        "drug_exposure_id",
        "drug_concept_id",
        "drug_exposure_start_date",
        "coalesce(drug_exposure_end_date, drug_exposure_start_date + days_supply, drug_exposure_start_date + 1)",
    ),
    "ProcedureOccurrence": (
        "procedure_occurrence",
        "procedure_occurrence_id",
        "procedure_concept_id",
        "procedure_date",
        "procedure_date + 1",
    ),
    "Measurement": (
        "measurement",
        "measurement_id",
        "measurement_concept_id",
        "measurement_date",
        "measurement_date + 1",
    ),
    "Observation": (
        "observation",
        "observation_id",
        "observation_concept_id",
        "observation_date",
        "observation_date + 1",
    ),
    "VisitOccurrence": (
        "visit_occurrence",
        "visit_occurrence_id",
        "visit_concept_id",
        "visit_start_date",
        "visit_end_date",
    ),
    "Specimen": ("specimen", "specimen_id", "specimen_concept_id", "specimen_date", "specimen_date + 1"),
}
_VALUE_OPS = {"lt": "<", "lte": "<=", "eq": "=", "!eq": "<>", "gt": ">", "gte": ">="}
_OCCURRENCE = {0: "=", 1: "<=", 2: ">="}
_TOP_KEYS = {
    "cdmVersionRange",
    "CensoringCriteria",
    "CensorWindow",
    "Title",
    "PrimaryCriteria",
    "ConceptSets",
    "AdditionalCriteria",
    "QualifiedLimit",
    "ExpressionLimit",
    "InclusionRules",
    "EndStrategy",
    "CollapseSettings",
}


def _or(value: Any, default: Any) -> Any:
    """Circe writes absent numbers as null."""
    return default if value is None else value


# ---------------------------------------------------------------- concept sets


def _concept_set_sql(concept_set: Mapping, where: str) -> str:
    """The concept ids of one concept set: included (with descendants / mapped) minus excluded."""
    included, excluded = [], []
    for n, item in enumerate(concept_set.get("expression", {}).get("items", [])):
        only_keys(
            item, {"concept", "isExcluded", "includeDescendants", "includeMapped"}, f"{where}.items[{n}]"
        )
        (excluded if item.get("isExcluded") else included).append(item)
    sql = _items_sql(included) if included else "SELECT NULL::INTEGER AS concept_id WHERE false"
    if excluded:
        sql = f"({sql}) EXCEPT ({_items_sql(excluded)})"
    return sql


def _items_sql(items: list[Mapping]) -> str:
    def ids(chosen: list[Mapping]) -> str:
        return ", ".join(str(int(i["concept"]["CONCEPT_ID"])) for i in chosen) or "NULL"

    plain = f"SELECT concept_id FROM cdm.concept WHERE concept_id IN ({ids(items)})"
    with_desc = [i for i in items if i.get("includeDescendants")]
    parts = [plain]
    if with_desc:
        parts.append(
            "SELECT c.concept_id FROM cdm.concept_ancestor ca JOIN cdm.concept c "
            "ON c.concept_id = ca.descendant_concept_id AND c.invalid_reason IS NULL "
            f"WHERE ca.ancestor_concept_id IN ({ids(with_desc)})"
        )
    mapped = [i for i in items if i.get("includeMapped")]
    if mapped:
        # a mapped item brings the source concepts that map to it (and to its descendants if asked)
        targets = _items_sql([{**i, "includeMapped": False} for i in mapped])
        parts.append(
            "SELECT cr.concept_id_1 FROM cdm.concept_relationship cr WHERE cr.relationship_id = 'Maps to' "
            f"AND cr.invalid_reason IS NULL AND cr.concept_id_2 IN ({targets})"
        )
    return " UNION ".join(parts)


def _codesets_cte(expression: Mapping) -> str:
    sets = expression.get("ConceptSets") or []
    parts = [
        f"SELECT {int(cs['id'])} AS codeset_id, concept_id FROM ({_concept_set_sql(cs, f'ConceptSets[{n}]')})"
        for n, cs in enumerate(sets)
    ]
    return (
        " UNION ALL ".join(parts)
        or "SELECT NULL::INTEGER AS codeset_id, NULL::INTEGER AS concept_id WHERE false"
    )


# ---------------------------------------------------------------- criteria -> events


def _events_sql(criterion: Mapping, where: str) -> str:
    """Events of one criterion: person_id, domain_event_id, concept_id, start_date, end_date."""
    if len(criterion) != 1:
        raise UnsupportedCohortConstruct(where, "a criterion with other than one domain")
    ((kind, attrs),) = criterion.items()
    if kind == "VariantOccurrence":
        sql = variant_events_sql(attrs, f"{where}.{kind}")
        if attrs.get("First"):
            sql = (
                "SELECT * EXCLUDE (ordinal) FROM (SELECT *, row_number() OVER (PARTITION BY person_id "
                f"ORDER BY start_date, domain_event_id) AS ordinal FROM ({sql})) WHERE ordinal = 1"
            )
    elif kind in _DOMAINS:
        sql = _domain_events_sql(kind, attrs, f"{where}.{kind}")
    else:
        raise UnsupportedCohortConstruct(where, kind)
    if attrs.get("Gender"):  # a person attribute, so it does not matter that First came first
        ids = ", ".join(str(int(c["CONCEPT_ID"])) for c in attrs["Gender"])
        sql = (
            f"SELECT e.* FROM ({sql}) e JOIN cdm.person gp ON gp.person_id = e.person_id "
            f"WHERE gp.gender_concept_id IN ({ids})"
        )
    return sql


def _domain_events_sql(kind: str, attrs: Mapping, where: str) -> str:
    table, id_col, concept_col, start, end = _DOMAINS[kind]
    allowed = {"CodesetId", "First", "Gender"}
    if kind == "Measurement":
        allowed |= {"ValueAsNumber", "Unit", "ValueAsConcept"}
    if kind == "Observation":
        allowed |= {"ValueAsString"}
    only_keys(attrs, allowed, where)
    source = f"cdm.{table}"
    if attrs.get("CodesetId") is not None:
        source = (
            f"(SELECT * FROM cdm.{table} WHERE {concept_col} IN "
            f"(SELECT concept_id FROM codesets WHERE codeset_id = {int(attrs['CodesetId'])}))"
        )
    filters = []
    if attrs.get("First"):
        # as in Circe, First is the person's first event of the concept set, before any value filter:
        # a first measurement out of range does not make the second one first
        source = (
            f"(SELECT *, row_number() OVER (PARTITION BY person_id ORDER BY {start}, {id_col}) AS ordinal "
            f"FROM {source})"
        )
        filters.append("ordinal = 1")
    if kind == "Measurement":
        filters += _measurement_filters(attrs, where)
    if attrs.get("ValueAsString"):
        filters.append(_text_filter_sql("value_as_string", attrs["ValueAsString"], f"{where}.ValueAsString"))
    where_sql = " AND ".join(filters) or "true"
    return (
        f"SELECT person_id, {id_col} AS domain_event_id, {concept_col} AS concept_id, {start} AS start_date, "
        f"{end} AS end_date FROM {source} WHERE {where_sql}"
    )


def _measurement_filters(attrs: Mapping, where: str) -> list[str]:
    filters = []
    value = attrs.get("ValueAsNumber")
    if value:
        op = value.get("Op")
        low = float(value["Value"])
        if op in _VALUE_OPS:
            filters.append(f"value_as_number {_VALUE_OPS[op]} {low!r}")
        elif op in ("bt", "!bt"):
            between = f"value_as_number BETWEEN {low!r} AND {float(value['Extent'])!r}"
            filters.append(between if op == "bt" else f"NOT ({between})")
        else:
            raise UnsupportedCohortConstruct(f"{where}.ValueAsNumber", f"operator {op!r}")
    for key, column in (("Unit", "unit_concept_id"), ("ValueAsConcept", "value_as_concept_id")):
        if attrs.get(key):
            ids = ", ".join(str(int(c["CONCEPT_ID"])) for c in attrs[key])
            filters.append(f"{column} IN ({ids})")
    return filters


# Circe's TextFilter operators as LIKE patterns; ILIKE, because Circe's LIKE runs on SQL Server's
# case-insensitive default collation, where "Former smoker" LIKE '%former%' holds.
_TEXT_OPS = {"startsWith": ("", "%"), "contains": ("%", "%"), "endsWith": ("%", "")}  # around the text


def _text_filter_sql(column: str, text_filter: Mapping, where: str) -> str:
    op = str(text_filter.get("Op", "contains"))
    around = _TEXT_OPS.get(op.removeprefix("!"))
    if around is None:
        raise UnsupportedCohortConstruct(where, f"text operator {op!r}")
    escaped = str(text_filter["Text"]).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    sql = f"{column} ILIKE {quote_literal(around[0] + escaped + around[1])} ESCAPE '\\'"
    return f"NOT ({sql})" if op.startswith("!") else sql  # as in SQL, a missing text matches neither


# ---------------------------------------------------------------- groups (additional criteria, inclusion rules)


def _window_sql(window: Mapping | None, event_end_default: bool, in_period: bool, where: str) -> list[str]:
    """Day-window conditions of a correlated criterion. A bound without Days is open, except that,
    as in Circe, while the observation period applies it stops at the period's start (Coeff -1) or
    end (Coeff 1)."""
    if not window:
        return []
    only_keys(window, {"Start", "End", "UseIndexEnd", "UseEventEnd"}, where)
    index_date = "i.end_date" if window.get("UseIndexEnd") else "i.start_date"
    use_event_end = window.get("UseEventEnd")
    event_date = (
        "e.end_date" if (event_end_default if use_event_end is None else use_event_end) else "e.start_date"
    )
    conditions = []
    for bound, op in (("Start", ">="), ("End", "<=")):
        spec = window.get(bound) or {}
        coeff = int(spec.get("Coeff", 1))
        if spec.get("Days") is not None:
            conditions.append(f"{event_date} {op} {index_date} + {int(spec['Days']) * coeff}")
        elif spec and in_period:
            conditions.append(f"{event_date} {op} {'i.op_start' if coeff == -1 else 'i.op_end'}")
    return conditions


def _correlated_sql(item: Mapping, where: str) -> str:
    """Index events (event_id) for which one correlated criterion's occurrence count holds."""
    only_keys(item, {"Criteria", "StartWindow", "EndWindow", "Occurrence", "IgnoreObservationPeriod"}, where)
    events = _events_sql(item["Criteria"], f"{where}.Criteria")
    conditions = ["e.person_id = i.person_id"]
    in_period = not item.get("IgnoreObservationPeriod")
    if in_period:
        conditions.append("e.start_date BETWEEN i.op_start AND i.op_end")
    conditions += _window_sql(item.get("StartWindow"), False, in_period, f"{where}.StartWindow")
    conditions += _window_sql(item.get("EndWindow"), True, in_period, f"{where}.EndWindow")
    occurrence = item.get("Occurrence") or {"Type": 2, "Count": 1}
    only_keys(occurrence, {"Type", "Count", "IsDistinct", "CountColumn"}, f"{where}.Occurrence")
    if occurrence["Type"] not in _OCCURRENCE:
        raise UnsupportedCohortConstruct(f"{where}.Occurrence", f"occurrence type {occurrence['Type']!r}")
    counted = "e.domain_event_id"
    if occurrence.get("IsDistinct"):  # distinct concepts by default, or distinct start dates
        column = {"DOMAIN_CONCEPT": "concept_id", "START_DATE": "start_date"}.get(
            occurrence.get("CountColumn") or "DOMAIN_CONCEPT"
        )
        if column is None:
            raise UnsupportedCohortConstruct(
                f"{where}.Occurrence", f"CountColumn {occurrence['CountColumn']!r}"
            )
        counted = f"DISTINCT e.{column}"
    return (
        f"SELECT i.event_id FROM idx i LEFT JOIN ({events}) e ON {' AND '.join(conditions)} "
        f"GROUP BY i.event_id HAVING count({counted}) {_OCCURRENCE[occurrence['Type']]} {int(occurrence['Count'])}"
    )


def _group_sql(group: Mapping, where: str) -> str:
    """Index events (event_id) satisfying a criteria group; an empty group holds for every event."""
    only_keys(group, {"Type", "Count", "CriteriaList", "Groups"}, where)
    members = [
        _correlated_sql(c, f"{where}.CriteriaList[{n}]")
        for n, c in enumerate(group.get("CriteriaList") or [])
    ]
    members += [_group_sql(g, f"{where}.Groups[{n}]") for n, g in enumerate(group.get("Groups") or [])]
    if not members:
        return "SELECT event_id FROM idx"
    kind = group.get("Type", "ALL")
    tests = {
        "ALL": f"= {len(members)}",
        "ANY": ">= 1",
        "AT_LEAST": f">= {int(_or(group.get('Count'), 1))}",
        "AT_MOST": f"<= {int(_or(group.get('Count'), 0))}",
    }
    if kind not in tests:
        raise UnsupportedCohortConstruct(where, f"group type {kind!r}")
    hits = " + ".join(f"(i.event_id IN ({m}))::INTEGER" for m in members)
    return f"SELECT i.event_id FROM idx i WHERE {hits} {tests[kind]}"


def _filter_by_groups(source: str, groups: list[tuple[Mapping, str]]) -> str:
    """Events of CTE `source` that satisfy every group; each group sees `source` as `idx`."""
    tests = [
        f"event_id IN (WITH idx AS (SELECT * FROM {source}) {_group_sql(g, where)})" for g, where in groups
    ]
    return f"SELECT * FROM {source}" + (f" WHERE {' AND '.join(tests)}" if tests else "")


def _limit_sql(source: str, limit: Mapping | None, where: str, applies: bool = True) -> str:
    """One event per person (First: the earliest, Last: the latest) or All. `applies` False keeps
    every event, as Circe does with a QualifiedLimit when there are no additional criteria."""
    kind = str(_or((limit or {}).get("Type"), "All")).title()  # Circe compares without case
    order = {"First": "ASC", "Last": "DESC"}.get(kind)
    if order is None and kind != "All":
        raise UnsupportedCohortConstruct(where, f"limit type {kind!r}")
    if order is None or not applies:
        return f"SELECT * FROM {source}"
    return (
        f"SELECT * EXCLUDE (ordinal) FROM (SELECT *, row_number() OVER (PARTITION BY person_id "
        f"ORDER BY start_date {order}, event_id) AS ordinal FROM {source}) WHERE ordinal = 1"
    )


# ---------------------------------------------------------------- whole definition


def _primary_sql(primary: Mapping) -> str:
    only_keys(primary, {"CriteriaList", "ObservationWindow", "PrimaryCriteriaLimit"}, "PrimaryCriteria")
    criteria = primary.get("CriteriaList") or []
    if not criteria:
        raise UnsupportedCohortConstruct("PrimaryCriteria", "an empty CriteriaList")
    union = " UNION ALL ".join(
        _events_sql(c, f"PrimaryCriteria.CriteriaList[{n}]") for n, c in enumerate(criteria)
    )
    window = primary.get("ObservationWindow") or {}
    prior, post = int(window.get("PriorDays", 0)), int(window.get("PostDays", 0))
    return (
        "SELECT row_number() OVER (ORDER BY e.person_id, e.start_date, e.end_date, e.domain_event_id, e.concept_id) "
        "AS event_id, e.person_id, e.start_date, e.end_date, op.observation_period_start_date AS op_start, "
        f"op.observation_period_end_date AS op_end FROM ({union}) e JOIN cdm.observation_period op "
        "ON op.person_id = e.person_id AND e.start_date >= op.observation_period_start_date + "
        f"{prior} AND e.start_date + {post} <= op.observation_period_end_date"
    )


def _end_sources(expression: Mapping) -> list[str]:
    """Candidate cohort ends of each included event (event_id, end_date), as Circe unions them: the
    end of the observation period (unless the strategy is DateOffset, which caps itself there), the
    end strategy's date, and each censoring criterion's first event from the index on. The earliest
    candidate on or after the start is the end; an event with none leaves no row."""
    strategy = expression.get("EndStrategy") or {}
    only_keys(strategy, {"DateOffset", "CustomEra"}, "EndStrategy")
    sources = (
        [] if "DateOffset" in strategy else ["SELECT event_id, op_end AS end_date FROM included_limited"]
    )
    if "DateOffset" in strategy:
        sources.append(_date_offset_sql(strategy["DateOffset"]))
    if "CustomEra" in strategy:
        sources.append(_custom_era_sql(strategy["CustomEra"], "EndStrategy.CustomEra"))
    for n, criterion in enumerate(expression.get("CensoringCriteria") or []):
        events = _events_sql(criterion, f"CensoringCriteria[{n}]")
        sources.append(
            f"SELECT i.event_id, min(c.start_date) AS end_date FROM included_limited i JOIN ({events}) c "
            "ON c.person_id = i.person_id AND c.start_date BETWEEN i.start_date AND i.op_end GROUP BY i.event_id"
        )
    return sources


def _date_offset_sql(offset: Mapping) -> str:
    only_keys(offset, {"DateField", "Offset"}, "EndStrategy.DateOffset")
    field = {"StartDate": "start_date", "EndDate": "end_date"}.get(_or(offset.get("DateField"), "StartDate"))
    if field is None:
        raise UnsupportedCohortConstruct("EndStrategy.DateOffset", f"DateField {offset.get('DateField')!r}")
    days = int(_or(offset.get("Offset"), 0))
    return f"SELECT event_id, least({field} + {days}, op_end) AS end_date FROM included_limited"


def _custom_era_sql(spec: Mapping, where: str) -> str:
    """Circe's drug era end: the person's exposures to the concept set (standard or source concept),
    each padded by GapDays, merged where they overlap; the end of the era holding the index start
    (unpadded, plus Offset)."""
    only_keys(spec, {"DrugCodesetId", "GapDays", "Offset"}, where)
    if spec.get("DrugCodesetId") is None:
        raise UnsupportedCohortConstruct(where, "a CustomEra without DrugCodesetId")
    gap, offset = int(_or(spec.get("GapDays"), 0)), int(_or(spec.get("Offset"), 0))
    codeset = f"(SELECT concept_id FROM codesets WHERE codeset_id = {int(spec['DrugCodesetId'])})"
    drugs = (
        "SELECT person_id, drug_exposure_start_date AS start_date, coalesce(drug_exposure_end_date, "
        "drug_exposure_start_date + days_supply, drug_exposure_start_date + 1) + "
        f"{gap} AS end_date FROM cdm.drug_exposure WHERE person_id IN (SELECT person_id FROM included_limited) "
        f"AND (drug_concept_id IN {codeset} OR drug_source_concept_id IN {codeset})"
    )
    eras = (
        f"SELECT person_id, min(start_date) AS era_start, max(end_date) - {gap} + {offset} AS era_end "
        f"FROM ({_islands_sql(f'({drugs})', 0)}) GROUP BY person_id, era"
    )
    return (
        f"SELECT i.event_id, e.era_end AS end_date FROM included_limited i JOIN ({eras}) e "
        "ON e.person_id = i.person_id AND i.start_date BETWEEN e.era_start AND e.era_end"
    )


def _islands_sql(source: str, pad: int) -> str:
    """Rows of `source` (person_id, start_date, end_date) numbered by era: a row starts a new era
    unless it starts within `pad` days of the latest end before it."""
    ordered = (
        "SELECT *, max(end_date) OVER (PARTITION BY person_id ORDER BY start_date, end_date "
        f"ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS prev_end FROM {source}"
    )
    return (
        "SELECT *, sum(CASE WHEN prev_end IS NOT NULL AND start_date <= prev_end + "
        f"{pad} THEN 0 ELSE 1 END) OVER (PARTITION BY person_id ORDER BY start_date, end_date "
        f"ROWS UNBOUNDED PRECEDING) AS era FROM ({ordered})"
    )


def _censor_window_sql(window: Mapping | None) -> tuple[str, str, str]:
    """Start and end expressions clamped to Circe's CensorWindow, and the filter dropping rows the
    clamp empties."""
    window = window or {}
    only_keys(window, {"StartDate", "EndDate"}, "CensorWindow")
    start, end, keep = "cohort_start_date", "cohort_end_date", "true"
    if window.get("StartDate"):
        start = f"greatest(cohort_start_date, DATE {quote_literal(str(window['StartDate']))})"
    if window.get("EndDate"):
        end = f"least(cohort_end_date, DATE {quote_literal(str(window['EndDate']))})"
    if start != "cohort_start_date" or end != "cohort_end_date":
        keep = f"{start} <= {end}"
    return start, end, keep


def _collapse_sql(settings: Mapping | None) -> str:
    settings = settings or {"CollapseType": "ERA", "EraPad": 0}
    only_keys(settings, {"CollapseType", "EraPad"}, "CollapseSettings")
    if settings.get("CollapseType", "ERA") != "ERA":
        raise UnsupportedCohortConstruct("CollapseSettings", f"collapse type {settings['CollapseType']!r}")
    pad = int(settings.get("EraPad", 0))
    return (
        "SELECT person_id AS subject_id, min(start_date) AS cohort_start_date, max(end_date) AS cohort_end_date "
        f"FROM ({_islands_sql('cohort_rows', pad)}) GROUP BY person_id, era"
    )


def compile_cohort(expression: Mapping) -> str:
    """DuckDB SQL returning the cohort's rows (subject_id, cohort_start_date, cohort_end_date)."""
    only_keys(expression, _TOP_KEYS, "definition")
    additional = expression.get("AdditionalCriteria")
    start, end, keep = _censor_window_sql(expression.get("CensorWindow"))
    rules = [
        (rule.get("expression") or {}, f"InclusionRules[{n}]({rule.get('name', '')})")
        for n, rule in enumerate(expression.get("InclusionRules") or [])
    ]
    return (
        f"WITH codesets AS ({_codesets_cte(expression)}), "
        f"primary_events AS ({_primary_sql(expression['PrimaryCriteria'])}), "
        f"primary_limited AS ({_limit_sql('primary_events', expression['PrimaryCriteria'].get('PrimaryCriteriaLimit'), 'PrimaryCriteriaLimit')}), "
        f"qualified AS ({_filter_by_groups('primary_limited', [(additional, 'AdditionalCriteria')] if additional else [])}), "
        f"qualified_limited AS ({_limit_sql('qualified', expression.get('QualifiedLimit'), 'QualifiedLimit', additional is not None)}), "
        f"included AS ({_filter_by_groups('qualified_limited', rules)}), "
        f"included_limited AS ({_limit_sql('included', expression.get('ExpressionLimit'), 'ExpressionLimit')}), "
        f"ends AS ({' UNION ALL '.join(_end_sources(expression))}), "
        # only ends on or after the start count: an offset end before it (an end date recorded
        # before the start) leaves the event without a row, as in Circe
        "cohort_rows AS (SELECT i.person_id, i.start_date, min(e.end_date) AS end_date FROM included_limited i "
        "JOIN ends e ON e.event_id = i.event_id AND e.end_date >= i.start_date "
        "GROUP BY i.event_id, i.person_id, i.start_date), "
        f"collapsed AS ({_collapse_sql(expression.get('CollapseSettings'))}) "
        f"SELECT subject_id, {start} AS cohort_start_date, {end} AS cohort_end_date FROM collapsed WHERE {keep}"
    )
