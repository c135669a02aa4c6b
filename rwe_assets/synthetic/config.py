"""Knobs of the synthetic population: who appears where, and how the sources disagree.

Every rate is a probability in [0, 1]. The defaults are what `rwe generate` uses; docs/synthetic.md
explains each one and what it exercises downstream.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from datetime import date

from rwe_assets.errors import ConfigError

# The data window. EHR sites export encounters from DATA_START; claims start later (the payer's
# extract is ICD-10-CM only, and ICD-10-CM started on 2015-10-01); everything ends the day before
# EXTRACT_DATE, the day the extracts were cut. Nobody is generated who died before DATA_START.
DATA_START = date(2012, 1, 1)
CLAIMS_START = date(2016, 1, 1)
EXTRACT_DATE = date(2025, 1, 1)

SOURCES = ("ehr_site_a", "ehr_site_b", "payer", "lab")
DEFAULT_CHUNK = 10_000


@dataclass(frozen=True)
class NoiseConfig:
    """Coverage of the sources and the disagreement between them.

    Coverage: a person is at site A with `coverage_ehr_site_a`; at site B with
    `overlap_site_b_given_a` if also at site A, otherwise with the probability that makes the
    marginal share at site B equal `coverage_ehr_site_b`; enrolled at the payer with
    `coverage_payer`, independently. Anyone left in no source is put at the payer. The lab tests
    `lab_test_rate` of everyone, and `lab_indicated_rate` of people with breast cancer and of the
    relatives of a tested carrier.

    Identity noise is drawn per source record (a person seen by three sources is three records):
    `typo_rate` (one edit in the first or last name), `nickname_rate` (Robert -> Bob where the first
    name has a nickname), `day_month_swap_rate` (birth date with day and month swapped, where the
    swap gives another valid date), `missing_ssn_rate` (SSN left blank where the source carries one).
    `surname_change_rate` is the chance that a married woman who took her spouse's surname did so
    inside the data window, so each of her records carries the birth or the married surname;
    `address_change_rate` is the chance that a household moved inside the window, so each record
    carries the old or the new address. `duplicate_rate` is the chance that a source holds a
    second record (another id, noise drawn again) for the same person. `twin_rate` is the chance
    that a household with two or more children has twins; `family_rate` the share of households
    with more than one member (who share surname and address).

    Code and row noise: `unmapped_code_share` of clinical rows carry a made-up local code instead
    of a catalogue code; `malformed_row_share` of clinical rows are broken so the raw layer must
    quarantine them (a CSV row with a missing field, an NDJSON line cut short);
    `invalid_date_share` of clinical rows carry an unparseable date (raw keeps them, staging must
    quarantine them). `pathogenic_variant_rate` is the share of families that carry a known
    pathogenic BRCA1/BRCA2 variant; `density` scales visit rates (1.0 = the documented default).
    """

    coverage_ehr_site_a: float = 0.55
    coverage_ehr_site_b: float = 0.40
    overlap_site_b_given_a: float = 0.30
    coverage_payer: float = 0.60
    lab_test_rate: float = 0.02
    lab_indicated_rate: float = 0.80
    typo_rate: float = 0.03
    nickname_rate: float = 0.08
    day_month_swap_rate: float = 0.01
    surname_change_rate: float = 0.15
    address_change_rate: float = 0.15
    missing_ssn_rate: float = 0.10
    duplicate_rate: float = 0.02
    twin_rate: float = 0.03
    family_rate: float = 0.45
    unmapped_code_share: float = 0.01
    malformed_row_share: float = 0.0005
    invalid_date_share: float = 0.0005
    pathogenic_variant_rate: float = 0.01
    density: float = 1.0

    def __post_init__(self) -> None:
        for item in fields(self):
            value = getattr(self, item.name)
            if not isinstance(value, int | float) or isinstance(value, bool):
                raise ConfigError(f"NoiseConfig.{item.name}: expected a number, found {type(value).__name__}")
            if item.name == "density":
                if not 0.05 <= value <= 20:
                    raise ConfigError(f"NoiseConfig.density: expected a number in [0.05, 20], found {value}")
            elif not 0.0 <= value <= 1.0:
                raise ConfigError(f"NoiseConfig.{item.name}: expected a probability in [0, 1], found {value}")
        if self.coverage_ehr_site_a * self.overlap_site_b_given_a > self.coverage_ehr_site_b:
            raise ConfigError(
                "NoiseConfig: expected coverage_ehr_site_a * overlap_site_b_given_a <= coverage_ehr_site_b "
                f"(people at both sites cannot outnumber site B), found "
                f"{self.coverage_ehr_site_a} * {self.overlap_site_b_given_a} > {self.coverage_ehr_site_b}"
            )

    def as_dict(self) -> dict[str, float]:
        return asdict(self)

    @classmethod
    def clean(cls) -> NoiseConfig:
        """No identity, code or row noise (coverage, families and variants as by default)."""
        return cls(
            typo_rate=0.0,
            nickname_rate=0.0,
            day_month_swap_rate=0.0,
            surname_change_rate=0.0,
            address_change_rate=0.0,
            missing_ssn_rate=0.0,
            duplicate_rate=0.0,
            unmapped_code_share=0.0,
            malformed_row_share=0.0,
            invalid_date_share=0.0,
        )
