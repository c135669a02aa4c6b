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
# 4. a Kaplan-Meier plot: time to breast cancer for BRCA1 c.5266dupC carriers and everyone else.

# %%
import os
from pathlib import Path

import duckdb
import polars as pl

import rwe_assets
from rwe_assets.lib.analytics.cohorts import compile_cohort, load_cohort
from rwe_assets.lib.analytics.disclosure import min_cell_count
from rwe_assets.lib.analytics.survival import kaplan_meier, survival_frame

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
# ## 4. Kaplan-Meier: time to breast cancer by BRCA1 c.5266dupC carrier status
#
# Age as the time scale (origin: birth), censored at the end of each person's last observation
# period; outcome cohort 788 (breast cancer), groups from cohort 9001 (carriers).

# %%
frame = survival_frame(con, outcome_id=788, group_id=9001, origin="birth")
km = kaplan_meier(
    frame,
    ("BRCA1 c.5266dupC carriers", "non-carriers"),
    "time to breast cancer",
    "age (years)",
    min_group=min_cell_count(),  # a smaller group is counted but not drawn
)
print(km.summary)
print(f"log-rank p = {km.logrank_p:.3g}")
plot = OUT / "km_first_hour.png"
plot.write_bytes(km.png)
print("plot:", plot)
try:  # inline in Jupyter; a script just saves the file
    from IPython.display import Image, display

    display(Image(data=km.png))
except ImportError:
    pass

# %%
con.close()
