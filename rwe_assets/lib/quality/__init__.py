"""Data quality of the OMOP CDM: the OHDSI Data Quality Dashboard v5.4 checks, generated from the packaged
catalogue (``dqd``: the public API and the command line; ``catalogue``, ``database``, ``planner``,
``runner``, ``results``: its parts by job) and the publish gate (``gate``). See docs/data-quality.md."""
