"""Exit codes of the `rwe` command beside 0."""

# 1 a run failed; 2 refused before anything ran (configuration, key).
FAILED, REFUSED = 1, 2
