"""The ground truth the generator writes beside its landing files (<data>/truth/, docs/synthetic.md),
named once here: the generator (rwe_assets.synthetic) writes these files and the runtime reads some of
them (linkage quality, the demo key's check), and the runtime never imports the generator."""

TRUTH_DIR = "truth"
REPORT = "report.json"  # the generation report: settings, counts, seed
EXPECTED_COUNTS = "expected_counts.csv"  # every landing file written, with its rows
PERSONS = "persons.csv"  # one row per true person
PERSON_RECORDS = "person_records.csv"  # each source record and the true person it belongs to
LAB_SAMPLES = "lab_samples.csv"
GENOTYPES = "genotypes.csv"
UPDATE_CHANGES = "update_changes.csv"  # what an update batch changed (rwe generate --update-of)
