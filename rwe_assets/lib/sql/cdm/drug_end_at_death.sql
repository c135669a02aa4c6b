-- A drug exposure whose end date was derived (start + days_supply, no source end date) ends at death
-- when the supply would outlast the person: a pharmacy fill shortly before death otherwise "runs" for
-- weeks after it, and its drug era with it. The DQD's plausibleBeforeDeath guidance asks ETLs to end such
-- derived exposures at death. days_supply keeps the dispensed supply; an end date the source states
-- (verbatim_end_date) is never changed, and neither is an exposure that starts after death (a source
-- error the DQD reports).
UPDATE cdm.drug_exposure AS e
SET drug_exposure_end_date = d.death_date
FROM cdm.death AS d
WHERE e.person_id = d.person_id
  AND e.verbatim_end_date IS NULL
  AND e.drug_exposure_start_date <= d.death_date
  AND e.drug_exposure_end_date > d.death_date
