"""Analytics on the CDM: characterization, cohorts, incidence and survival."""
