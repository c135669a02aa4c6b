"""Cohort assets: one per definition file in rwe_assets/cohorts/ (ATLAS Circe JSON or the YAML form,
lib/analytics/cohorts.py), each replacing its own rows of cdm.cohort and cdm.cohort_definition, and
one incidence/survival asset over them (lib/analytics/survival.py).

They write build.duckdb in the ``duckdb_build`` pool like every writer of that file, after the CDM
tables they read, so cohorts land in the build before it is published. The code version of a cohort
asset is a digest of its definition file (and of the JSON it names), so an edited definition shows
the asset as stale. The survival asset writes results.incidence_rate, results.km_curve and
results.km_summary (small cells blanked, lib/analytics/disclosure.py), the KM plot as
warehouse/plots/km_<analysis>.png per analysis, and shows the plots and the incidence table in its metadata.
"""

import hashlib
import time
from pathlib import Path

import dagster as dg
import polars as pl
import yaml

from rwe_assets.defs.quality import DQ_RESULTS
from rwe_assets.defs.quality.assets import build_database
from rwe_assets.lib.analytics.cohorts import CohortDefinition, cohort_files, load_cohort, write_cohort
from rwe_assets.lib.analytics.disclosure import min_cell_count
from rwe_assets.lib.analytics.survival import (
    DEFAULT_KM_ANALYSES,
    POPULATION,
    KmAnalysis,
    incidence_persons,
    incidence_table,
    png_markdown,
    run_km,
    write_incidence,
)
from rwe_assets.lib.warehouse_files import PLOTS_DIR
from rwe_assets.resources import RweConfig

COHORT_DIR = Path(__file__).resolve().parents[2] / "cohorts"
COMPILER_VERSION = "circe-subset-1"
# The CDM tables a cohort may read; the cohort tables themselves are created empty by the CDM build.
CDM_READS = [
    "cohort",
    "cohort_definition",
    "person",
    "observation_period",
    "condition_occurrence",
    "drug_exposure",
    "procedure_occurrence",
    "measurement",
    "observation",
    "visit_occurrence",
    "specimen",
    "variant_occurrence",
    "target_gene",
]
VOCABULARY = dg.AssetKey(["results", "vocabulary"])
# downstream of every cohort asset: what the publish step waits for
INCIDENCE_SURVIVAL = dg.AssetKey(["analytics", "incidence_survival"])


def cohort_key(definition: CohortDefinition) -> dg.AssetKey:
    return dg.AssetKey(["analytics", f"cohort_{definition.cohort_definition_id}"])


def _digest(path: Path) -> str:
    digest = hashlib.sha256(path.read_bytes())
    named = (
        (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("circe")
        if path.suffix != ".json"
        else None
    )
    if named:
        digest.update((path.parent / named).read_bytes())
    return digest.hexdigest()[:12]


def _cohort_asset(path: Path) -> dg.AssetsDefinition:
    definition = load_cohort(path)

    @dg.asset(
        key=cohort_key(definition),
        group_name="analytics",
        kinds={"duckdb"},
        # after the DQD: it checks the CDM as the ETL built it, and its foreign-key check on
        # cohort_definition expects cohort rows that an empty cohort (none in a sample) lacks
        deps=[*(dg.AssetKey(["cdm", t]) for t in CDM_READS), VOCABULARY, DQ_RESULTS],
        pool="duckdb_build",
        code_version=f"{COMPILER_VERSION}-{_digest(path)}",
        description=f"Cohort {definition.cohort_definition_id}: {definition.name} ({path.name}) -> cdm.cohort",
    )
    def _cohort(context: dg.AssetExecutionContext, rwe: RweConfig) -> dg.MaterializeResult:
        started = time.perf_counter()
        current = load_cohort(path)  # the file as it is now, not as it was at import
        with build_database(rwe).get_connection() as con:
            result = write_cohort(con, current)
        return dg.MaterializeResult(
            metadata={
                "cohort_definition_id": result.cohort_definition_id,
                "definition_file": path.name,
                "rows": result.rows,
                "persons": result.persons,
                "seconds": round(time.perf_counter() - started, 3),
                "sql": dg.MetadataValue.md(f"```sql\n{result.sql}\n```"),
            }
        )

    return _cohort


def build_cohort_assets(folder: Path = COHORT_DIR) -> list[dg.AssetsDefinition]:
    return [_cohort_asset(path) for path in cohort_files(folder)]


class KmConfig(dg.Config):
    """One Kaplan-Meier analysis (lib/analytics/survival.py, KmAnalysis)."""

    name: str  # the name in results.km_* and the plot's file name, km_<name>.png
    outcome_cohort_id: int
    group_cohort_id: int  # curves: in this cohort against the rest of the population
    population_cohort_id: int = 0  # 0 = everyone with an observation period
    origin: str = "birth"  # time scale: age ('birth') or time since population entry ('entry')


class SurvivalConfig(dg.Config):
    """Which cohorts the incidence and Kaplan-Meier analyses use (defaults: the bundled examples)."""

    # incidence: time at risk from entry into this cohort; 0 = everyone, over their first observation period
    incidence_target_cohort_id: int = POPULATION
    incidence_outcome_cohort_id: int = 503  # type 2 diabetes
    # the bundled analyses; Dagster takes defaults of nested configs as dicts
    km_analyses: list[KmConfig] = [  # noqa: RUF012 (pydantic copies defaults)
        {
            "name": a.name,
            "outcome_cohort_id": a.outcome_id,
            "group_cohort_id": a.group_id,
            "population_cohort_id": a.population_id or 0,
            "origin": a.origin,
        }
        for a in DEFAULT_KM_ANALYSES
    ]


def _km_analysis(item: KmConfig | dict) -> KmAnalysis:
    """A configured analysis; the defaults arrive as the dicts they are written as, unless
    Dagster's config processing has turned them into KmConfig."""
    fields = KmConfig(**item) if isinstance(item, dict) else item
    return KmAnalysis(
        fields.name,
        fields.outcome_cohort_id,
        fields.group_cohort_id,
        fields.population_cohort_id or None,
        fields.origin,
    )


def _survival_asset(cohort_keys: list[dg.AssetKey]) -> dg.AssetsDefinition:
    @dg.asset(
        key=INCIDENCE_SURVIVAL,
        group_name="analytics",
        kinds={"duckdb", "png"},
        deps=cohort_keys,
        pool="duckdb_build",
        code_version="survival-2",
    )
    def incidence_survival(
        context: dg.AssetExecutionContext, rwe: RweConfig, config: SurvivalConfig
    ) -> dg.MaterializeResult:
        """Incidence per 1,000 person-years (exact Poisson CI) by age group and sex, and Kaplan-Meier
        curves with a log-rank test, into results.*; the KM plots beside the database."""
        settings = rwe.settings()
        minimum = min_cell_count(settings=settings)
        started = time.perf_counter()
        metadata: dict = {}
        with build_database(rwe).get_connection() as con:
            target, outcome = config.incidence_target_cohort_id, config.incidence_outcome_cohort_id
            table = incidence_table(incidence_persons(con, target, outcome))
            shared = write_incidence(con, target, outcome, table, minimum)
            for km_config in config.km_analyses:
                analysis = _km_analysis(km_config)
                km, persons, plot = run_km(con, analysis, minimum, settings.warehouse_dir / PLOTS_DIR)
                metadata |= {
                    f"km_plot_{analysis.name}": dg.MetadataValue.md(png_markdown(km.png, analysis.name)),
                    f"km_plot_path_{analysis.name}": dg.MetadataValue.path(str(plot)),
                    f"logrank_p_{analysis.name}": km.logrank_p,
                    f"km_persons_{analysis.name}": persons,
                    f"excluded_outcome_before_origin_{analysis.name}": km.excluded_outcome_before_origin,
                }
        return dg.MaterializeResult(
            metadata={
                "incidence": dg.MetadataValue.md(_markdown_table(shared)),
                **metadata,
                "min_cell_count": minimum,
                "seconds": round(time.perf_counter() - started, 2),
            }
        )

    return incidence_survival


def _markdown_table(frame: pl.DataFrame) -> str:
    columns = [c for c in frame.columns if c not in ("target_cohort_id", "outcome_cohort_id")]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in frame.select(columns).iter_rows():
        lines.append(
            "| "
            + " | ".join("" if v is None else (f"{v:.2f}" if isinstance(v, float) else str(v)) for v in row)
            + " |"
        )
    return "\n".join(lines)


cohort_definition_assets = build_cohort_assets()
cohort_assets = [*cohort_definition_assets, _survival_asset([a.key for a in cohort_definition_assets])]
