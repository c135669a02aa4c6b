"""The names of what the warehouse folder (settings.warehouse_dir) holds, each spelled once here: a
leaf module, so that the modules writing these files and lib/governance/permissions.py (which shares
some of them with analysts) name them without importing each other."""

BUILD = "build.duckdb"  # what the pipeline writes (lib/cdm/build.py)
PUBLISHED = "rwe.duckdb"  # the copy analysts open (lib/publish.py)
DEID_FILE = "rwe_deid.duckdb"  # the de-identified extract (lib/governance/extract.py)
DQD_JSON_FILE = "dq_results.json"  # the DQD results for the OHDSI viewer (lib/analytics/dqd_export.py)
PLOTS_DIR = "plots"  # Kaplan-Meier plots of the cohort analyses (defs/analytics/cohorts.py)
