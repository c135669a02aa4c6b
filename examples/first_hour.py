# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # The first hour with the published CDM
#
# A notebook in the percent format: Jupyter (with jupytext), VS Code and PyCharm open it as a
# notebook, and `python examples/first_hour.py` runs it top to bottom. It opens the published
# database **read-only** (`data/warehouse/rwe.duckdb`, or the file named by `RWE_DB`), so it can run
# while the pipeline builds the next version. It needs the project's environment (`.venv`).
#
# 1. characterization: persons by gender and year of birth,
# 2. a cohort: the bundled type 2 diabetes definition (ATLAS cohort 503) run as a query, and the
#    cohorts the pipeline wrote to `cdm.cohort`,
# 3. an incidence table: `results.incidence_rate`,
# 4. Kaplan-Meier plots: time to breast cancer for BRCA1/BRCA2 pathogenic variant carriers among
#    tested women, and time to COPD for ever smokers among persons whose smoking status is recorded.

# %%
import os
from pathlib import Path

import duckdb
import polars as pl

import rwe_assets
from rwe_assets.lib.analytics.cohorts import compile_cohort, load_cohort
from rwe_assets.lib.analytics.disclosure import min_cell_count
from rwe_assets.lib.analytics.survival import kaplan_meier, km_labels, survival_frame

DB = Path(os.environ.get("RWE_DB", "data/warehouse/rwe.duckdb"))
OUT = Path(os.environ.get("RWE_NOTEBOOK_OUT", "."))  # where the plot is saved
COHORTS = Path(rwe_assets.__file__).parent / "cohorts"  # the bundled definitions
con = duckdb.connect(str(DB), read_only=True)
print(DB, "opened read-only")

# %% [markdown]
# ## 1. Characterization

# %%
by_gender = con.sql(
    """
    SELECT coalesce(c.concept_name, 'unknown') AS gender, count(*) AS persons
    FROM cdm.person p LEFT JOIN cdm.concept c ON c.concept_id = p.gender_concept_id
    GROUP BY 1 ORDER BY 2 DESC
    """
).pl()
by_decade = (
    con.sql("SELECT year_of_birth FROM cdm.person")
    .pl()
    .group_by((pl.col("year_of_birth") // 10 * 10).alias("birth_decade"))
    .len("persons")
    .sort("birth_decade")
)
print(by_gender)
print(by_decade)

# %% [markdown]
# ## 2. A cohort
#
# `compile_cohort` turns an ATLAS (Circe) definition into one SELECT, so it runs on the read-only
# file; the pipeline writes the same rows to `cdm.cohort` (asset `analytics/cohort_503`).

# %%
t2d = load_cohort(COHORTS / "type2_diabetes_503.yaml")
t2d_rows = con.sql(compile_cohort(t2d.expression)).pl()
print(t2d.name, "-", t2d_rows["subject_id"].n_unique(), "persons,", t2d_rows.height, "eras")
written = con.sql(
    """
    SELECT d.cohort_definition_id, d.cohort_definition_name,
           count(c.subject_id) AS entries, count(DISTINCT c.subject_id) AS persons
    FROM cdm.cohort_definition d LEFT JOIN cdm.cohort c USING (cohort_definition_id)
    GROUP BY ALL ORDER BY 1
    """
).pl()
print(written)

# %% [markdown]
# ## 3. Incidence
#
# Rates per 1,000 person-years with exact Poisson 95% intervals, by age group and sex, as the
# pipeline computed them (by default: type 2 diabetes, cohort 503, in everyone observed; target 0 is
# the whole population over their first observation period). Small cells are blank (the minimum
# cell count of the build).

# %%
incidence = con.sql(
    """
    SELECT target_cohort_id AS target, outcome_cohort_id AS outcome, age_group, sex, persons, outcomes,
           round(person_years, 1) AS person_years,
           round(rate_per_1000py, 2) AS rate, round(ci_lower, 2) AS ci_lower, round(ci_upper, 2) AS ci_upper
    FROM results.incidence_rate ORDER BY ALL
    """
).pl()
print(incidence)

# %% [markdown]
# ## 4. Kaplan-Meier
#
# Age as the time scale (origin: birth), to the outcome cohort's first entry, censored at the end of
# each person's last observation period; a group cohort against the rest of a population cohort,
# all written by the pipeline (rwe_assets/cohorts/):
#
# - breast cancer (788): BRCA1/BRCA2 pathogenic variant carriers (9002) among women with a genetic
#   test (9003);
# - COPD (9004): ever smokers (9005) among persons with a recorded smoking status (9006).
#
# A group smaller than the minimum cell count is counted but not drawn (the demo's 2,000 persons
# hold two tested women who carry a variant: their curve stays out).

# %%
ANALYSES = {"brca_breast_cancer": (788, 9002, 9003), "smoking_copd": (9004, 9005, 9006)}
for name, (outcome, group, population) in ANALYSES.items():
    frame = survival_frame(con, outcome, group, population_id=population, origin="birth")
    km = kaplan_meier(
        frame, km_labels(con, group, population), name, "age (years)", min_group=min_cell_count()
    )
    print(km.summary)
    print(f"{name}: log-rank p = {km.logrank_p:.3g}")
    plot = OUT / f"km_first_hour_{name}.png"
    plot.write_bytes(km.png)
    print("plot:", plot)
    try:  # inline in Jupyter; a script just saves the file
        from IPython.display import Image, display

        display(Image(data=km.png))
    except ImportError:
        pass

# %%
con.close()
