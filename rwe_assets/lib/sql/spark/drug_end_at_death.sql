-- Spark variant of lib/sql/cdm/drug_end_at_death.sql (rule there), whose UPDATE .. FROM Spark has not
-- on plain tables: DRUG_EXPOSURE rewritten whole, a derived end date that outlasts death set to the
-- death date, every other column as it was (lib/spark/tables.py keeps the table's column types). One
-- death date per person, as DEATH holds one row per person.
CREATE OR REPLACE TABLE cdm.drug_exposure AS
SELECT e.* EXCEPT (drug_exposure_end_date),
       CASE WHEN e.verbatim_end_date IS NULL
                 AND e.drug_exposure_start_date <= d.death_date
                 AND e.drug_exposure_end_date > d.death_date
            THEN d.death_date ELSE e.drug_exposure_end_date END AS drug_exposure_end_date
FROM cdm.drug_exposure AS e
LEFT JOIN (SELECT person_id, min(death_date) AS death_date FROM cdm.death GROUP BY person_id) AS d
  ON d.person_id = e.person_id;
