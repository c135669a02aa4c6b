"""The bundled vocabulary subset (vocab/) and its builder.

The committed files are checked for self-consistency only: these tests never read the shards or
the samples under ../shared (the builder records sample coverage in vocab/README.md instead). The
builder itself is exercised on tiny hand-made shard folders under tmp_path.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import polars as pl
import pytest

from tools.vocabulary import vocab_subset as vs

VOCAB_DIR = Path(__file__).resolve().parents[2] / "vocab"
SHARD_NAMES = {"eunomia_synthea27nj", "eunomia_gibleed", "dbt_synthea"}
YYYYMMDD = re.compile(r"^(19|20)\d{2}(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])$")


def read_athena(path: Path) -> pl.DataFrame:
    return pl.read_csv(path, separator="\t", quote_char=None, infer_schema=False)


@pytest.fixture(scope="module")
def vocab() -> dict[str, pl.DataFrame]:
    return {table: read_athena(VOCAB_DIR / f"{table}.csv") for table in vs.TABLE_COLUMNS}


@pytest.fixture(scope="module")
def provenance() -> pl.DataFrame:
    return pl.read_csv(VOCAB_DIR / "PROVENANCE.csv", infer_schema=False)


def ids(frame: pl.DataFrame, column: str = "concept_id") -> set[int]:
    return {int(v) for v in frame[column].drop_nulls().to_list()}


# ---------------------------------------------------------------------------------------------
# The committed vocab/
# ---------------------------------------------------------------------------------------------


def test_every_table_has_athena_header_and_tabs() -> None:
    for table, columns in vs.TABLE_COLUMNS.items():
        path = VOCAB_DIR / f"{table}.csv"
        first = path.read_text(encoding="utf-8").splitlines()[0]
        assert first.split("\t") == columns, table


def test_bundle_is_small_and_documented() -> None:
    total = sum(p.stat().st_size for p in VOCAB_DIR.iterdir() if p.is_file())
    assert total < 5 * 1024 * 1024
    for name in ("README.md", "LICENSE", "PROVENANCE.csv"):
        assert (VOCAB_DIR / name).is_file(), name
    readme = (VOCAB_DIR / "README.md").read_text(encoding="utf-8")
    assert "python -m tools.vocabulary.vocab_subset" in readme
    assert "DEMO" in readme and "## Gaps" in readme
    # The builder recorded the sample coverage (tests must not read the samples themselves).
    assert re.search(r"\| synthea27 \| SNOMED \| \d+ \| \d+ \| \d+ \|", readme)
    assert re.search(r"\| synthea27 \| RxNorm \| \d+ \| \d+ \| \d+ \|", readme)


def test_dates_are_athena_yyyymmdd(vocab: dict[str, pl.DataFrame]) -> None:
    for table, frame in vocab.items():
        for column in ("valid_start_date", "valid_end_date"):
            if column in frame.columns:
                bad = [v for v in frame[column].to_list() if not YYYYMMDD.match(v or "")]
                assert not bad, (table, column, bad[:5])


def test_concept_ids_are_unique_and_zero_exists(vocab: dict[str, pl.DataFrame]) -> None:
    concept = vocab["CONCEPT"]
    assert concept["concept_id"].n_unique() == concept.height
    zero = concept.filter(pl.col("concept_id") == "0").row(0, named=True)
    assert zero["concept_name"] == "No matching concept"
    assert (zero["domain_id"], zero["vocabulary_id"], zero["standard_concept"]) == ("Metadata", "None", None)


# id -> (domain_id, vocabulary_id, standard_concept): what the CDM writes by itself.
REQUIRED = {
    0: ("Metadata", "None", None),
    8507: ("Gender", "Gender", "S"),
    8532: ("Gender", "Gender", "S"),
    8515: ("Race", "Race", "S"),
    8516: ("Race", "Race", "S"),
    8527: ("Race", "Race", "S"),
    8557: ("Race", "Race", "S"),
    8657: ("Race", "Race", "S"),
    38003563: ("Ethnicity", "Ethnicity", "S"),
    38003564: ("Ethnicity", "Ethnicity", "S"),
    9201: ("Visit", "Visit", "S"),
    9202: ("Visit", "Visit", "S"),
    9203: ("Visit", "Visit", "S"),
    262: ("Visit", "Visit", "S"),
    581476: ("Visit", "Visit", "S"),
    32817: ("Type Concept", "Type Concept", "S"),
    32810: ("Type Concept", "Type Concept", "S"),
    32827: ("Type Concept", "Type Concept", "S"),
    32838: ("Type Concept", "Type Concept", "S"),
    32856: ("Type Concept", "Type Concept", "S"),
    32869: ("Type Concept", "Type Concept", "S"),
    32882: ("Type Concept", "Type Concept", "S"),
    32902: ("Condition Status", "Condition Status", "S"),
    32908: ("Condition Status", "Condition Status", "S"),
    756265: ("Metadata", "CDM", "S"),
    4112853: ("Condition", "SNOMED", "S"),  # Malignant tumor of breast (genomics feature)
}


@pytest.mark.parametrize("concept_id", sorted(REQUIRED))
def test_ids_the_cdm_writes_exist(vocab: dict[str, pl.DataFrame], concept_id: int) -> None:
    rows = vocab["CONCEPT"].filter(pl.col("concept_id") == str(concept_id))
    assert rows.height == 1, concept_id
    row = rows.row(0, named=True)
    assert (row["domain_id"], row["vocabulary_id"], row["standard_concept"]) == REQUIRED[concept_id]
    assert row["invalid_reason"] is None


def test_names_of_key_ids(vocab: dict[str, pl.DataFrame]) -> None:
    names = dict(vocab["CONCEPT"].select("concept_id", "concept_name").iter_rows())
    assert names["8507"] == "MALE" and names["8532"] == "FEMALE"
    assert names["8527"] == "White" and names["8516"] == "Black or African American"
    assert names["32817"] == "EHR" and names["32810"] == "Claim"
    assert names["756265"] == "OMOP CDM Version 5.4.0"


def test_relationship_and_ancestor_ends_exist(vocab: dict[str, pl.DataFrame]) -> None:
    known = ids(vocab["CONCEPT"])
    rel = vocab["CONCEPT_RELATIONSHIP"]
    assert ids(rel, "concept_id_1") <= known
    assert ids(rel, "concept_id_2") <= known
    assert set(rel["relationship_id"].to_list()) <= vs.KEPT_RELATIONSHIPS
    anc = vocab["CONCEPT_ANCESTOR"]
    assert ids(anc, "ancestor_concept_id") <= known
    assert ids(anc, "descendant_concept_id") <= known
    assert ids(vocab["CONCEPT_SYNONYM"]) <= known
    strength = vocab["DRUG_STRENGTH"]
    assert ids(strength, "drug_concept_id") | ids(strength, "ingredient_concept_id") <= known


def test_standard_concepts_map_to_and_descend_from_themselves(vocab: dict[str, pl.DataFrame]) -> None:
    """Athena's conventions: a standard concept 'Maps to' itself, and a standard or classification
    concept is its own ancestor at level 0 (else a descendant query misses the concept itself)."""
    concept = vocab["CONCEPT"]
    standard = ids(concept.filter(pl.col("standard_concept") == "S"))
    rel = vocab["CONCEPT_RELATIONSHIP"].filter(pl.col("concept_id_1") == pl.col("concept_id_2"))
    for relationship in ("Maps to", "Mapped from"):
        assert ids(rel.filter(pl.col("relationship_id") == relationship), "concept_id_1") >= standard
    anc = vocab["CONCEPT_ANCESTOR"]
    self_rows = anc.filter(pl.col("ancestor_concept_id") == pl.col("descendant_concept_id"))
    assert (self_rows["min_levels_of_separation"] == 0).all() and (
        self_rows["max_levels_of_separation"] == 0
    ).all()
    hierarchical = ids(concept.filter(pl.col("standard_concept").is_in(["S", "C"])))
    assert ids(self_rows, "ancestor_concept_id") >= hierarchical
    assert 201826 in standard  # type 2 diabetes: the cookbook's descendant query


def test_maps_to_targets_are_standard(vocab: dict[str, pl.DataFrame]) -> None:
    concept = vocab["CONCEPT"].select("concept_id", "standard_concept", "invalid_reason")
    maps_to = vocab["CONCEPT_RELATIONSHIP"].filter(pl.col("relationship_id") == "Maps to")
    assert maps_to.height > 0
    targets = maps_to.join(concept, left_on="concept_id_2", right_on="concept_id")
    assert targets.height == maps_to.height
    assert targets.filter(pl.col("standard_concept") != "S").height == 0


def test_source_to_concept_map_targets(vocab: dict[str, pl.DataFrame]) -> None:
    stcm = vocab["SOURCE_TO_CONCEPT_MAP"]
    concept = vocab["CONCEPT"]
    joined = stcm.join(concept, left_on="target_concept_id", right_on="concept_id", how="left")
    assert joined.filter(pl.col("concept_name").is_null()).height == 0
    assert joined.filter(pl.col("standard_concept") != "S").height == 0
    assert (joined["target_vocabulary_id"] == joined["vocabulary_id"]).all()
    assert (ids(stcm, "source_concept_id") - {0}) <= ids(concept)
    codes = dict(stcm.select("source_code", "target_concept_id").iter_rows())
    assert codes["C50.911"] == "4112853"  # right female breast -> Malignant tumor of breast
    assert codes["E11.9"] == "201826" and codes["I10"] == "320128" and codes["401.9"] == "320128"
    assert stcm.filter(pl.col("source_vocabulary_id") == "ICD10CM").height >= 40


def test_metadata_tables_cover_what_concepts_reference(vocab: dict[str, pl.DataFrame]) -> None:
    concept = vocab["CONCEPT"]
    vocabularies = set(vocab["VOCABULARY"]["vocabulary_id"].to_list())
    assert set(concept["vocabulary_id"].to_list()) <= vocabularies
    assert set(vocab["SOURCE_TO_CONCEPT_MAP"]["source_vocabulary_id"].to_list()) <= vocabularies
    assert set(concept["domain_id"].to_list()) <= set(vocab["DOMAIN"]["domain_id"].to_list())
    assert set(concept["concept_class_id"].to_list()) <= set(
        vocab["CONCEPT_CLASS"]["concept_class_id"].to_list()
    )
    used = set(vocab["CONCEPT_RELATIONSHIP"]["relationship_id"].to_list())
    assert used <= set(vocab["RELATIONSHIP"]["relationship_id"].to_list())
    none = vocab["VOCABULARY"].filter(pl.col("vocabulary_id") == "None").row(0, named=True)
    assert none["vocabulary_version"].startswith("rwe_assets demo subset built from")


METADATA_FKS = (
    ("VOCABULARY", "vocabulary_id", "vocabulary_name", "vocabulary_concept_id", "Vocabulary"),
    ("DOMAIN", "domain_id", "domain_name", "domain_concept_id", "Domain"),
    ("CONCEPT_CLASS", "concept_class_id", "concept_class_name", "concept_class_concept_id", "Concept Class"),
    ("RELATIONSHIP", "relationship_id", "relationship_name", "relationship_concept_id", "Relationship"),
)


@pytest.mark.parametrize(
    ("table", "column"),
    [(t, c) for t, _, _, c, _ in METADATA_FKS]
    + [("CONCEPT_SYNONYM", "concept_id"), ("CONCEPT_SYNONYM", "language_concept_id")],
)
def test_every_concept_id_of_the_other_tables_is_in_concept(
    vocab: dict[str, pl.DataFrame], table: str, column: str
) -> None:
    """The DQD fkDomain/isForeignKey checks on the vocabulary tables."""
    missing = ids(vocab[table], column) - ids(vocab["CONCEPT"])
    assert not missing, (table, column, sorted(missing)[:10])


def test_concept_foreign_keys_into_the_metadata_tables(vocab: dict[str, pl.DataFrame]) -> None:
    concept = vocab["CONCEPT"]
    for column, table in (
        ("vocabulary_id", "VOCABULARY"),
        ("domain_id", "DOMAIN"),
        ("concept_class_id", "CONCEPT_CLASS"),
    ):
        missing = set(concept[column].to_list()) - set(vocab[table][column].to_list())
        assert not missing, (column, missing)
    kinds = {"Vocabulary", "Domain", "Concept Class", "Relationship"}
    assert kinds <= set(vocab["VOCABULARY"]["vocabulary_id"].to_list())
    assert kinds <= set(vocab["CONCEPT_CLASS"]["concept_class_id"].to_list())
    assert "Metadata" in set(vocab["DOMAIN"]["domain_id"].to_list())


@pytest.mark.parametrize(("table", "key", "name", "column", "kind"), METADATA_FKS)
def test_metadata_concepts_follow_the_omop_conventions(
    vocab: dict[str, pl.DataFrame], table: str, key: str, name: str, column: str, kind: str
) -> None:
    concept = vocab["CONCEPT"].rename(lambda c: f"c_{c}")
    joined = vocab[table].join(concept, left_on=column, right_on="c_concept_id", how="left")
    assert joined.height == vocab[table].height
    for row in joined.iter_rows(named=True):
        where = (table, row[key])
        assert row["c_concept_name"] == row[name], where
        assert (row["c_domain_id"], row["c_vocabulary_id"], row["c_concept_class_id"]) == (
            "Metadata",
            kind,
            kind,
        ), where
        assert (row["c_standard_concept"], row["c_concept_code"], row["c_invalid_reason"]) == (
            None,
            "OMOP generated",
            None,
        ), where
        assert (row["c_valid_start_date"], row["c_valid_end_date"]) == ("19700101", "20991231"), where


def test_known_athena_metadata_concepts(vocab: dict[str, pl.DataFrame]) -> None:
    """Rows as on their Athena concept pages (https://athena.ohdsi.org/search-terms/terms/<id>)."""
    rows = {
        r[0]: r[1:]
        for r in vocab["CONCEPT"].select("concept_id", "concept_name", "vocabulary_id").iter_rows()
    }
    assert rows["44819096"] == ("OMOP Standardized Vocabularies", "Vocabulary")
    assert rows["44819232"] == ("OMOP Vocabulary", "Vocabulary")
    assert rows["44819279"] == ("OMOP Vocabulary", "Concept Class")
    assert rows["7"] == ("Metadata", "Domain")
    assert rows["44818821"] == ("Is a", "Relationship")


def test_synonyms_without_a_language_concept_are_left_out(vocab: dict[str, pl.DataFrame]) -> None:
    # No shard has 4180186 'English language' and its CONCEPT row is not confirmed (see Gaps).
    assert "4180186" not in set(vocab["CONCEPT"]["concept_id"].to_list())
    assert vocab["CONCEPT_SYNONYM"].height == 0
    readme = (VOCAB_DIR / "README.md").read_text(encoding="utf-8")
    assert "| 4180186 |" in readme and "CONCEPT_SYNONYM rows are left out" in readme


def test_drugs_reach_an_ingredient(vocab: dict[str, pl.DataFrame]) -> None:
    concept = vocab["CONCEPT"]
    ingredients = ids(concept.filter(pl.col("concept_class_id") == "Ingredient"))
    anc = vocab["CONCEPT_ANCESTOR"].filter(pl.col("ancestor_concept_id").is_in([str(i) for i in ingredients]))
    linked = ids(anc, "descendant_concept_id")
    assert 19078106 in linked  # hydrochlorothiazide 25 MG Oral Tablet, through the curated ancestor row
    assert 19080128 in linked  # lisinopril 10 MG Oral Tablet, through a shard ancestor row


def test_every_concept_has_provenance(vocab: dict[str, pl.DataFrame], provenance: pl.DataFrame) -> None:
    assert provenance.columns == vs.PROVENANCE_COLUMNS
    concept_rows = provenance.filter(pl.col("table") == "CONCEPT")
    assert concept_rows["key"].n_unique() == concept_rows.height
    assert set(concept_rows["key"].to_list()) == set(vocab["CONCEPT"]["concept_id"].to_list())
    not_shard = concept_rows.filter(~pl.col("source").is_in(sorted(SHARD_NAMES)))
    assert not_shard.height > 0
    derived = not_shard.filter(pl.col("source").str.starts_with("derived from "))
    for source in not_shard.filter(~pl.col("source").str.starts_with("derived from "))["source"].to_list():
        assert source.startswith("OMOP documentation:"), source
    for concept_id in (756265, 8557, 32817, 32902):
        assert str(concept_id) in set(not_shard["key"].to_list())
    # Derived metadata concepts cite the shard table rows they come from and the documentation.
    origins = "|".join(sorted(SHARD_NAMES | {"rwe_assets"}))
    row_citation = re.compile(rf"^({origins}) (VOCABULARY|DOMAIN|CONCEPT_CLASS|RELATIONSHIP) row '[^']+'")
    assert derived.height > 0
    for source, detail in derived.select("source", "detail").iter_rows():
        for origin in source.removeprefix("derived from ").split("; "):
            assert row_citation.match(origin), origin
        assert "OMOP documentation: OHDSI" in detail and "Vocabulary-v5.0" in detail, detail
        assert "https://athena.ohdsi.org/search-terms/terms/" in detail, detail


def test_curated_rows_of_other_tables_have_provenance(
    vocab: dict[str, pl.DataFrame], provenance: pl.DataFrame
) -> None:
    stcm_keys = {
        f"{v}|{c}"
        for v, c in vocab["SOURCE_TO_CONCEPT_MAP"].select("source_vocabulary_id", "source_code").iter_rows()
    }
    documented = set(provenance.filter(pl.col("table") == "SOURCE_TO_CONCEPT_MAP")["key"].to_list())
    assert stcm_keys == documented
    anc_keys = set(provenance.filter(pl.col("table") == "CONCEPT_ANCESTOR")["key"].to_list())
    assert "*" in anc_keys  # shard rows, summarised per shard
    # Curated ancestor rows that no shard already holds are documented one by one.
    curated = vs.load_additions(vs.ADDITIONS_DIR).ancestors
    shard_summary = provenance.filter((pl.col("table") == "CONCEPT_ANCESTOR") & (pl.col("key") == "*"))
    assert shard_summary.height >= 1
    for anc, desc in curated.select("ancestor_concept_id", "descendant_concept_id").iter_rows():
        present = vocab["CONCEPT_ANCESTOR"].filter(
            (pl.col("ancestor_concept_id") == str(anc)) & (pl.col("descendant_concept_id") == str(desc))
        )
        assert present.height == 1, (anc, desc)
    for table in ("VOCABULARY", "DOMAIN", "CONCEPT_CLASS", "RELATIONSHIP"):
        assert provenance.filter(pl.col("table") == table).height == vocab[table].height, table


def test_curated_additions_are_consistent() -> None:
    additions = vs.load_additions(vs.ADDITIONS_DIR)
    assert additions.concepts["concept_id"].n_unique() == additions.concepts.height
    assert additions.concepts.filter(pl.col("source").is_null() | (pl.col("source") == "")).height == 0
    assert additions.ancestors.filter(pl.col("source").is_null()).height == 0
    gap_items = set(additions.gaps["item"].to_list())
    # What the gaps list says is missing must really be missing.
    for item in gap_items:
        if item.isdigit():
            assert int(item) not in ids(additions.concepts), item


OPAQUE = re.compile(r"code index|\bfiles? \d{8,}")
FOLLOWABLE = re.compile(r"https://|\b[\w.-]+/[\w.-]+ [\w./()-]+\.\w+\b")  # a URL, or owner/repo path/file.ext


def test_curated_sources_can_be_followed() -> None:
    """Every hand-added concept and ancestor row cites a URL or a repository file a reader can open; no
    citation is an id of a search index nobody else can open, here or in what the builder wrote."""
    additions = vs.load_additions(vs.ADDITIONS_DIR)
    for frame in (additions.concepts, additions.ancestors):
        for source in frame["source"].to_list():
            assert FOLLOWABLE.search(source), source
    texts = [p.read_text(encoding="utf-8") for p in sorted(vs.ADDITIONS_DIR.glob("*.csv"))]
    texts += [(VOCAB_DIR / name).read_text(encoding="utf-8") for name in ("PROVENANCE.csv", "README.md")]
    texts += [p.read_text(encoding="utf-8") for p in Path(vs.__file__).parent.glob("*.py")]
    assert not [m.group(0) for text in texts for m in OPAQUE.finditer(text)]


def test_the_followable_check_refuses_an_opaque_citation() -> None:
    assert OPAQUE.search("OMOP documentation: public code index file 49305030351 (a dump)")
    assert not FOLLOWABLE.search("OMOP documentation: public code index file 49305030351 (a dump)")
    assert FOLLOWABLE.search("OHDSI/ETL-CMS python_etl/constants.py (DRUG_TYPE_PRESCRIPTION = 38000175)")


# ---------------------------------------------------------------------------------------------
# The builder on tiny hand-made shards
# ---------------------------------------------------------------------------------------------


def write_rows(path: Path, header: list[str], rows: list[list[object]], delimiter: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, delimiter=delimiter, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


CONCEPT_HEADER = vs.TABLE_COLUMNS["CONCEPT"]
REL_HEADER = vs.TABLE_COLUMNS["CONCEPT_RELATIONSHIP"]
ANC_HEADER = vs.TABLE_COLUMNS["CONCEPT_ANCESTOR"]


@pytest.fixture()
def tiny(tmp_path: Path) -> dict[str, Path]:
    shards = tmp_path / "shards"
    # Shard "alpha": Athena layout (tab, upper-case header, YYYYMMDD).
    write_rows(
        shards / "alpha" / "CONCEPT.csv",
        [c.upper() for c in CONCEPT_HEADER],
        [
            [
                1001,
                "Diabetes (alpha)",
                "Condition",
                "SNOMED",
                "Clinical Finding",
                "S",
                "111",
                "20020131",
                "20991231",
                "",
            ],
            [
                1002,
                "Old diabetes code",
                "Condition",
                "SNOMED",
                "Clinical Finding",
                "",
                "112",
                "20020131",
                "20180101",
                "U",
            ],
            [
                2001,
                "drug 10 MG Oral Tablet",
                "Drug",
                "RxNorm",
                "Clinical Drug",
                "S",
                "900",
                "19700101",
                "20991231",
                "",
            ],
            [2002, "drug", "Drug", "RxNorm", "Ingredient", "S", "901", "19700101", "20991231", ""],
            [
                3001,
                "Unrelated",
                "Condition",
                "SNOMED",
                "Clinical Finding",
                "S",
                "999",
                "20020131",
                "20991231",
                "",
            ],
            [8507, "MALE", "Gender", "Gender", "Gender", "S", "M", "19700101", "20991231", ""],
            # A language concept (test data) and a shard's own row for a metadata concept.
            [
                4000001,
                "Test language",
                "Language",
                "SNOMED",
                "Clinical Finding",
                "S",
                "L1",
                "19700101",
                "20991231",
                "",
            ],
            [
                44818977,
                "Mapping relationship to Standard Concept (OMOP)",
                "Metadata",
                "Relationship",
                "Relationship",
                "",
                "OMOP generated",
                "19700101",
                "20991231",
                "",
            ],
        ],
        "\t",
    )
    write_rows(
        shards / "alpha" / "CONCEPT_SYNONYM.csv",
        vs.TABLE_COLUMNS["CONCEPT_SYNONYM"],
        [[1001, "Diabetes mellitus", 4000001], [1001, "DM", 9999999], [3001, "Other", 4000001]],
        "\t",
    )
    write_rows(
        shards / "alpha" / "CONCEPT_RELATIONSHIP.csv",
        REL_HEADER,
        [
            [1002, 1001, "Maps to", "20180101", "20991231", ""],
            [1001, 1002, "Mapped from", "20180101", "20991231", ""],
            [2001, 5555, "RxNorm - SPL", "20180101", "20991231", ""],
            [1001, 3001, "Is a", "20180101", "20991231", ""],
            [2001, 2002, "Has marketed form", "20180101", "20991231", ""],
        ],
        "\t",
    )
    write_rows(
        shards / "alpha" / "VOCABULARY.csv",
        vs.TABLE_COLUMNS["VOCABULARY"],
        [["None", "x", "y", "v5.0 TEST*", 0]],
        "\t",
    )
    # Shard "beta": dbt seed layout (comma, *_seed.csv, YYYY-MM-DD), conflicting row for 1001.
    write_rows(
        shards / "beta" / "concept_seed.csv",
        CONCEPT_HEADER,
        [
            [
                1001,
                "Diabetes (beta)",
                "Condition",
                "SNOMED",
                "Clinical Finding",
                "S",
                "111",
                "2002-01-31",
                "2099-12-31",
                "",
            ]
        ],
        ",",
    )
    write_rows(
        shards / "beta" / "concept_ancestor_seed.csv",
        ANC_HEADER,
        [[2002, 2001, 2, 3], [2002, 7777, 1, 1]],
        ",",
    )
    write_rows(
        shards / "beta" / "vocabulary_seed.csv",
        vs.TABLE_COLUMNS["VOCABULARY"],
        [
            ["SNOMED", "SNOMED CT", "ref", "2023", 44819097],
            ["RxNorm", "RxNorm", "ref", "2024", 44819104],
            ["Gender", "OMOP Gender", "OMOP generated", "", 44819108],
            ["ICD10CM", "ICD-10-CM", "ref", "2024", 44819098],
            ["Vocabulary", "OMOP Vocabulary", "OMOP generated", "", 44819232],
            ["Domain", "OMOP Domain", "OMOP generated", "", 44819147],
            ["Concept Class", "OMOP Concept Class", "OMOP generated", "", 44819233],
            ["Relationship", "OMOP Relationship", "OMOP generated", "", 44819235],
        ],
        ",",
    )
    write_rows(
        shards / "beta" / "domain_seed.csv",
        vs.TABLE_COLUMNS["DOMAIN"],
        [
            ["Condition", "Condition", 19],
            ["Metadata", "Metadata", 7],
            # Two rows, one metadata concept (as Athena's Provider / Provider Specialty).
            ["Provider", "Provider Specialty", 33],
            ["Provider Specialty", "Provider Specialty", 33],
        ],
        ",",
    )
    write_rows(
        shards / "beta" / "concept_class_seed.csv",
        vs.TABLE_COLUMNS["CONCEPT_CLASS"],
        [
            ["Clinical Finding", "Clinical Finding", 44818997],
            ["Vocabulary", "OMOP Vocabulary", 44819279],
            ["Domain", "Domain", 44819025],
            ["Concept Class", "OMOP Concept Class", 44819247],
            ["Relationship", "OMOP Relationship", 44819274],
            ["Unused", "Unused class", 44819999],
        ],
        ",",
    )
    write_rows(
        shards / "beta" / "relationship_seed.csv",
        vs.TABLE_COLUMNS["RELATIONSHIP"],
        [
            ["Maps to", "Non-standard to Standard map (OMOP)", 0, 0, "Mapped from", 44818977],
            ["Mapped from", "Standard to Non-standard map (OMOP)", 0, 0, "Maps to", 44818976],
            ["Is a", "Is a", 1, 0, "Subsumes", 44818821],
            ["Subsumes", "Subsumes", 1, 1, "Is a", 44818723],
        ],
        ",",
    )
    samples = tmp_path / "samples" / "synthea"
    write_rows(
        samples / "conditions.csv",
        ["START", "STOP", "PATIENT", "ENCOUNTER", "CODE", "DESCRIPTION"],
        [["2020-01-01", "", "p", "e", "112", "old"]],
        ",",
    )
    write_rows(
        samples / "medications.csv",
        ["START", "STOP", "PATIENT", "PAYER", "ENCOUNTER", "CODE", "DESCRIPTION", "REASONCODE"],
        [["2020-01-01", "", "p", "x", "e", "900", "drug", ""]],
        ",",
    )
    additions = tmp_path / "additions"
    write_rows(
        additions / "concepts.csv",
        [*CONCEPT_HEADER, "source", "unconfirmed"],
        [
            [
                32817,
                "EHR",
                "Type Concept",
                "Type Concept",
                "Type Concept",
                "S",
                "OMOP4976890",
                "20200820",
                "20991231",
                "",
                "OMOP documentation: test",
                "",
            ]
        ],
        ",",
    )
    write_rows(
        additions / "source_to_concept_map.csv",
        [*vs.TABLE_COLUMNS["SOURCE_TO_CONCEPT_MAP"], "rationale"],
        [
            [
                "E11.9",
                0,
                "ICD10CM",
                "Type 2 diabetes mellitus without complications",
                1001,
                "SNOMED",
                "19700101",
                "20991231",
                "",
                "test",
            ]
        ],
        ",",
    )
    return {"shards": shards, "samples": samples, "additions": additions, "out": tmp_path / "out"}


def build(tiny: dict[str, Path], **kwargs: object) -> vs.BuildResult:
    return vs.build_vocab_subset(
        tiny["shards"],
        tiny["out"],
        sample_dirs=[tiny["samples"]],
        additions_dir=tiny["additions"],
        dqd_concept_level=None,
        **kwargs,
    )


def test_builder_filters_and_keeps(tiny: dict[str, Path]) -> None:
    result = build(tiny)
    out = tiny["out"]
    concept = read_athena(out / "CONCEPT.csv")
    kept = ids(concept.filter(pl.col("domain_id") != "Metadata"))
    # sample code 112 (non-standard) + its Maps to target, sample drug + its ingredient (ancestor),
    # whole Gender vocabulary, curated Type Concept, the language of 1001's synonym; 3001 is only
    # reachable through 'Is a'.
    assert kept == {1001, 1002, 2001, 2002, 8507, 32817, 4000001}
    # first shard wins on conflicts; dates normalised to YYYYMMDD
    row = concept.filter(pl.col("concept_id") == "1001").row(0, named=True)
    assert row["concept_name"] == "Diabetes (alpha)"
    assert row["valid_start_date"] == "20020131"
    rel = set(
        read_athena(out / "CONCEPT_RELATIONSHIP.csv")
        .select("concept_id_1", "concept_id_2", "relationship_id")
        .iter_rows()
    )
    standard = {str(i) for i in ids(concept.filter(pl.col("standard_concept") == "S"))}
    assert {r for r in rel if r[0] != r[1]} == {("1002", "1001", "Maps to"), ("1001", "1002", "Mapped from")}
    # the Athena convention rows no shard carried: each standard concept maps to itself
    assert {r for r in rel if r[0] == r[1]} == {
        (i, i, m) for i in standard for m in ("Maps to", "Mapped from")
    }
    anc = set(
        read_athena(out / "CONCEPT_ANCESTOR.csv")
        .select("ancestor_concept_id", "descendant_concept_id")
        .iter_rows()
    )
    assert {r for r in anc if r[0] != r[1]} == {("2002", "2001")}
    hierarchical = {str(i) for i in ids(concept.filter(pl.col("standard_concept").is_in(["S", "C"])))}
    assert {r for r in anc if r[0] == r[1]} == {(i, i) for i in hierarchical}
    assert result.row_counts["CONCEPT"] == 7 + 1 + len(TINY_METADATA_CONCEPTS)  # + shard row 44818977
    vocabulary = read_athena(out / "VOCABULARY.csv")
    assert "ICD10CM" in set(vocabulary["vocabulary_id"].to_list())  # source vocabulary of the map
    none = vocabulary.filter(pl.col("vocabulary_id") == "None").row(0, named=True)
    assert none["vocabulary_version"] == "rwe_assets demo subset built from alpha v5.0 TEST"
    rel_table = read_athena(out / "RELATIONSHIP.csv")
    assert set(rel_table["relationship_id"].to_list()) == {"Maps to", "Mapped from"}
    provenance = pl.read_csv(out / "PROVENANCE.csv", infer_schema=False)
    sources = dict(provenance.filter(pl.col("table") == "CONCEPT").select("key", "source").iter_rows())
    assert {k: v for k, v in sources.items() if not v.startswith("derived from ")} == {
        "1001": "alpha",
        "1002": "alpha",
        "2001": "alpha",
        "2002": "alpha",
        "8507": "alpha",
        "4000001": "alpha",
        "44818977": "alpha",
        "32817": "OMOP documentation: test",
    }
    readme = (out / "README.md").read_text(encoding="utf-8")
    assert "| synthea | SNOMED | 1 | 1 | 1 |" in readme
    assert "| synthea | RxNorm | 1 | 1 | 1 |" in readme


# Metadata concepts the tiny build derives: id -> (name, kind, derived from).
TINY_METADATA_CONCEPTS = {
    # iteration 1: the rows that the kept concepts, the map and the relationships reference
    44819096: ("OMOP Standardized Vocabularies", "Vocabulary", "rwe_assets VOCABULARY row 'None'"),
    44819097: ("SNOMED CT", "Vocabulary", "beta VOCABULARY row 'SNOMED'"),
    44819098: ("ICD-10-CM", "Vocabulary", "beta VOCABULARY row 'ICD10CM'"),
    44819104: ("RxNorm", "Vocabulary", "beta VOCABULARY row 'RxNorm'"),
    44819108: ("OMOP Gender", "Vocabulary", "beta VOCABULARY row 'Gender'"),
    19: ("Condition", "Domain", "beta DOMAIN row 'Condition'"),
    7: ("Metadata", "Domain", "beta DOMAIN row 'Metadata'"),
    33: ("Provider Specialty", "Domain", "beta DOMAIN row 'Provider'; beta DOMAIN row 'Provider Specialty'"),
    44818997: ("Clinical Finding", "Concept Class", "beta CONCEPT_CLASS row 'Clinical Finding'"),
    44818976: ("Standard to Non-standard map (OMOP)", "Relationship", "beta RELATIONSHIP row 'Mapped from'"),
    # iteration 2: the vocabularies and classes of the metadata concepts themselves
    44819232: ("OMOP Vocabulary", "Vocabulary", "beta VOCABULARY row 'Vocabulary'"),
    44819147: ("OMOP Domain", "Vocabulary", "beta VOCABULARY row 'Domain'"),
    44819233: ("OMOP Concept Class", "Vocabulary", "beta VOCABULARY row 'Concept Class'"),
    44819235: ("OMOP Relationship", "Vocabulary", "beta VOCABULARY row 'Relationship'"),
    44819279: ("OMOP Vocabulary", "Concept Class", "beta CONCEPT_CLASS row 'Vocabulary'"),
    44819025: ("Domain", "Concept Class", "beta CONCEPT_CLASS row 'Domain'"),
    44819247: ("OMOP Concept Class", "Concept Class", "beta CONCEPT_CLASS row 'Concept Class'"),
    44819274: ("OMOP Relationship", "Concept Class", "beta CONCEPT_CLASS row 'Relationship'"),
}


def test_builder_derives_metadata_concepts(tiny: dict[str, Path]) -> None:
    result = build(tiny)
    out = tiny["out"]
    tables = {t: read_athena(out / f"{t}.csv") for t in vs.TABLE_COLUMNS}
    concept = tables["CONCEPT"]
    provenance = pl.read_csv(out / "PROVENANCE.csv", infer_schema=False)
    derived = provenance.filter(
        (pl.col("table") == "CONCEPT") & pl.col("source").str.starts_with("derived from ")
    )
    assert ids(derived, "key") == set(TINY_METADATA_CONCEPTS)
    for concept_id, (name, kind, origin) in TINY_METADATA_CONCEPTS.items():
        row = concept.filter(pl.col("concept_id") == str(concept_id)).row(0, named=True)
        assert row == {
            "concept_id": str(concept_id),
            "concept_name": name,
            "domain_id": "Metadata",
            "vocabulary_id": kind,
            "concept_class_id": kind,
            "standard_concept": None,
            "concept_code": "OMOP generated",
            "valid_start_date": "19700101",
            "valid_end_date": "20991231",
            "invalid_reason": None,
        }
        source, detail = derived.filter(pl.col("key") == str(concept_id)).select("source", "detail").row(0)
        assert source == f"derived from {origin}"
        assert detail.startswith("metadata concept of that row:")
        assert vs.METADATA_CONVENTION_SOURCES[kind] in detail
    # A shard's own CONCEPT row wins over a derived one; the differing name is reported.
    maps_to = concept.filter(pl.col("concept_id") == "44818977").row(0, named=True)
    assert maps_to["concept_name"] == "Mapping relationship to Standard Concept (OMOP)"
    assert any("RELATIONSHIP row 'Maps to'" in w and "Mapping relationship" in w for w in result.warnings)
    # Every *_concept_id of the metadata tables is in CONCEPT, and the metadata concepts' own
    # vocabularies, classes and domain are in VOCABULARY, CONCEPT_CLASS and DOMAIN.
    known = ids(concept)
    for table, column in (
        ("VOCABULARY", "vocabulary_concept_id"),
        ("DOMAIN", "domain_concept_id"),
        ("CONCEPT_CLASS", "concept_class_concept_id"),
        ("RELATIONSHIP", "relationship_concept_id"),
        ("CONCEPT_SYNONYM", "language_concept_id"),
    ):
        assert ids(tables[table], column) <= known, table
    metadata = concept.filter(pl.col("domain_id") == "Metadata")
    assert set(metadata["vocabulary_id"].to_list()) <= set(tables["VOCABULARY"]["vocabulary_id"].to_list())
    assert set(metadata["concept_class_id"].to_list()) <= set(
        tables["CONCEPT_CLASS"]["concept_class_id"].to_list()
    )
    assert "Metadata" in set(tables["DOMAIN"]["domain_id"].to_list())
    assert "Unused" not in set(tables["CONCEPT_CLASS"]["concept_class_id"].to_list())
    # Synonyms: kept with a kept language concept, left out (and reported) without one.
    assert set(tables["CONCEPT_SYNONYM"].select("concept_id", "language_concept_id").iter_rows()) == {
        ("1001", "4000001")
    }
    assert any("CONCEPT_SYNONYM rows left out" in w and "9999999" in w for w in result.warnings)
    readme = (out / "README.md").read_text(encoding="utf-8")
    assert "## Metadata concepts" in readme
    assert "Derived: 9 'Vocabulary', 3 'Domain', 5 'Concept Class', 1 'Relationship'." in readme


def test_builder_output_is_deterministic(tiny: dict[str, Path], tmp_path: Path) -> None:
    build(tiny)
    first = {p.name: p.read_bytes() for p in tiny["out"].iterdir()}
    tiny["out"] = tmp_path / "again"
    build(tiny)
    second = {p.name: p.read_bytes() for p in tiny["out"].iterdir()}
    assert first == second


def test_builder_extra_code_list(tiny: dict[str, Path], tmp_path: Path) -> None:
    extra = tmp_path / "extra.csv"
    write_rows(extra, ["vocabulary_id", "concept_code"], [["SNOMED", "999"]], ",")
    build(tiny, extra_code_lists=[extra])
    kept = ids(read_athena(tiny["out"] / "CONCEPT.csv"))
    assert 3001 in kept
    rel = read_athena(tiny["out"] / "CONCEPT_RELATIONSHIP.csv")
    assert ("1001", "3001", "Is a") in set(
        rel.select("concept_id_1", "concept_id_2", "relationship_id").iter_rows()
    )


def test_builder_rejects_non_standard_map_target(tiny: dict[str, Path]) -> None:
    write_rows(
        tiny["additions"] / "source_to_concept_map.csv",
        [*vs.TABLE_COLUMNS["SOURCE_TO_CONCEPT_MAP"], "rationale"],
        [["E11.9", 0, "ICD10CM", "x", 1002, "SNOMED", "19700101", "20991231", "", "bad"]],
        ",",
    )
    with pytest.raises(ValueError, match="standard"):
        build(tiny)


def test_builder_rejects_unknown_map_target(tiny: dict[str, Path]) -> None:
    write_rows(
        tiny["additions"] / "source_to_concept_map.csv",
        [*vs.TABLE_COLUMNS["SOURCE_TO_CONCEPT_MAP"], "rationale"],
        [["E11.9", 0, "ICD10CM", "x", 424242, "SNOMED", "19700101", "20991231", "", "bad"]],
        ",",
    )
    with pytest.raises(ValueError, match="424242"):
        build(tiny)


def test_cli_entry_point(tiny: dict[str, Path]) -> None:
    code = vs.main(
        [
            "--shards",
            str(tiny["shards"]),
            "--out",
            str(tiny["out"]),
            "--samples",
            str(tiny["samples"]),
            "--additions",
            str(tiny["additions"]),
        ]
    )
    assert code == 0
    assert (tiny["out"] / "CONCEPT.csv").is_file()
    assert "--samples" in (tiny["out"] / "README.md").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("raw", "dotted"),
    [("4019", "401.9"), ("25000", "250.00"), ("496", "496"), ("V0481", "V04.81"), ("E8889", "E888.9")],
)
def test_icd9_diagnosis_codes_get_athena_dots(raw: str, dotted: str) -> None:
    assert vs.icd9_diagnosis_dotted(raw) == dotted


def test_hcpcs_level_one_is_cpt4() -> None:
    assert vs.hcpcs_vocabulary("99213") == "CPT4"
    assert vs.hcpcs_vocabulary("0001F") == "CPT4"
    assert vs.hcpcs_vocabulary("G0008") == "HCPCS"
    assert vs.icd9_procedure_dotted("7869") == "78.69"


def test_fhir_and_synpuf_codes_are_gathered(tmp_path: Path) -> None:
    fhir = tmp_path / "fhir"
    fhir.mkdir()
    (fhir / "Condition.000.ndjson").write_text(
        '{"resourceType":"Condition","code":{"coding":[{"system":"http://snomed.info/sct","code":"44054006"}]}}\n'
        '{"resourceType":"Immunization","vaccineCode":{"coding":[{"system":"http://hl7.org/fhir/sid/cvx","code":"140"},'
        '{"system":"urn:other","code":"x"}]}}\n',
        encoding="utf-8",
    )
    puf = tmp_path / "puf"
    write_rows(
        puf / "carrier.csv",
        ["DESYNPUF_ID", "ICD9_DGNS_CD_1", "HCPCS_CD_1", "LINE_ICD9_DGNS_CD_1"],
        [["A", "4019", "99213", "V0481"]],
        ",",
    )
    write_rows(puf / "pde.csv", ["DESYNPUF_ID", "PROD_SRVC_ID"], [["A", "61392018345"]], ",")
    codes = set(vs.gather_sample_codes([fhir, puf]).select("vocabulary_id", "concept_code").iter_rows())
    assert codes == {
        ("SNOMED", "44054006"),
        ("CVX", "140"),
        ("ICD9CM", "401.9"),
        ("ICD9CM", "V04.81"),
        ("CPT4", "99213"),
        ("NDC", "61392018345"),
    }
