"""The comparisons of the Fellegi-Sunter model (model.py): Splink comparison levels over tokens.

Splink never sees a name or a date: every level below is a SQL condition over keyed tokens (equality,
membership in a list of tokens) and keyed Bloom filters (Dice similarity, dice()), so Splink works
unchanged on encoded fields.

A trained model weighs exact name, ZIP and city agreement by the frequency of the shared value (Splink's
term-frequency adjustment, frequencies counted by model.term_frequencies() over the whole run).

The levels carry prior m/u values (documented in docs/linkage.md): EM starts from them and a
population too small to train on (see model.MIN_RECORDS_TO_TRAIN) is scored with them as they are.
"""

from __future__ import annotations

from rwe_assets.lib.linkage.tokens import BLOOM, WORD

# Term-frequency adjusted columns: agreement on a value is weighed by how common that value is in the
# population being linked (Splink's tf adjustment: the level's average u is replaced by the value's
# frequency). Agreeing on "smith" says less than agreeing on "zbigniewska", on "london" less than on a
# village (a birthplace field holding counties made "same city" a strong bridge between namesakes).
# tf_<column> is computed over every record of the run (model.term_frequencies), so old and new records are
# weighed alike.
TF_COLUMNS = ("t_given", "t_family", "t_zip", "t_city")
# Only a trained model is adjusted: its u comes from the same population the frequencies are counted
# in. The prior u of an untrained model (fewer than model.MIN_RECORDS_TO_TRAIN records) is a guess for a
# large population, and in a few hundred records every name is "common" (2 of 10 is 20 %): adjusted,
# a small first batch lost 4 bits per agreeing name and stopped linking obvious duplicates.
# A value's frequency below this is not believed: a name seen once in a small file would otherwise
# get a weight no field disagreement can outvote (1e-4 = a name 1 in 10,000 records share).
TF_MIN_U = 1e-4


def _level(
    sql: str,
    label: str,
    m: float | None = None,
    u: float | None = None,
    null: bool = False,
    tf: str | None = None,
) -> dict:
    """A comparison level; `tf` names the column whose term frequency adjusts it (TF_COLUMNS)."""
    level = {"sql_condition": sql, "label_for_charts": label}
    if null:
        level["is_null_level"] = True
    else:
        level.update(m_probability=m, u_probability=u)
    if tf is not None:
        # the level's own u is the base the value's frequency replaces (the name level also holds swaps)
        level.update(
            tf_adjustment_column=tf,
            tf_adjustment_weight=1.0,
            tf_minimum_u_value=TF_MIN_U,
            disable_tf_exact_match_detection=True,
        )
    return level


# One call name is the other's nickname (or the same): a direct relation in the list. Two names both
# listed under a third (robert and william under "bill") are not related.
def nickname_sql(left: str, right: str) -> str:
    """SQL: the call names of records `left` and `right` (a column's prefix, or "" with the suffix
    written as "{}_l") are the same or one is listed as the other's nickname."""

    def col(side: str, name: str) -> str:
        return side.format(name)

    return (
        f"(list_contains({col(left, 't_given_forms')}, {col(right, 't_given_first')}) "
        f"OR list_contains({col(right, 't_given_forms')}, {col(left, 't_given_first')}))"
    )


def _name_comparison(name: str, col: str, cross: str, extra: list[dict], tf: bool) -> dict:
    return {
        "output_column_name": name,
        "comparison_description": f"{name}: keyed tokens, one-edit tokens and Bloom-filter Dice similarity",
        "comparison_levels": [
            _level(f"{col}_l IS NULL OR {col}_r IS NULL", "null", null=True),
            # Names swapped between the fields (both crossed) are the same names in the wrong place:
            # exact agreement, with its m and u. A level of their own got a far larger weight (random
            # pairs almost never swap, so u was tiny) and merged common names written in either order;
            # one name found in the other field alone counted one agreement on both comparisons.
            _level(
                f"{col}_l = {col}_r OR ({col}_l = {cross}_r AND {cross}_l = {col}_r)",
                "exact, or both names swapped",
                0.85,
                0.01,
                tf=col if tf else None,
            ),
            *extra,
            _level(f"list_contains({col}_near_l, {col}_r)", "one edit apart", 0.04, 0.002),
            _level(dice(name) + " >= 0.8", "dice >= 0.8", 0.02, 0.001),
            _level(dice(name) + " >= 0.6", "dice >= 0.6", 0.02, 0.01),
            _level("ELSE", "else", 0.03, 0.974),
        ],
    }


def comparisons(tf: bool = True) -> list[dict]:
    """The model's comparisons; tf: term-frequency adjusted name and ZIP agreement (trained models)."""
    given = _name_comparison(
        "given",
        "t_given",
        "t_family",
        [_level(nickname_sql("{}_l", "{}_r"), "same call name or nickname", 0.05, 0.004)],
        tf,
    )
    family = _name_comparison(
        "family",
        "t_family",
        "t_given",
        [
            _level(
                "t_maiden_l = t_family_r OR t_family_l = t_maiden_r OR t_maiden_l = t_maiden_r",
                "maiden name agrees",
                0.05,
                0.002,
            )
        ],
        tf,
    )
    # Partial agreement of birth dates: typing errors (swapped day and month, one wrong digit) before
    # approximate dates (same or neighbouring month, same year). Dates a year or more apart get no
    # credit: in a large population that is as likely another person of the same name.
    dob = {
        "output_column_name": "dob",
        "comparison_description": "birth date tokens",
        "comparison_levels": [
            # no year on one side: no information (a partial date, year or year-month, still compares)
            _level("t_yob_l IS NULL OR t_yob_r IS NULL", "null", null=True),
            _level("t_dob_l = t_dob_r AND t_dob_l <> t_ydate_l", "exact", 0.9, 0.0001),
            # 1 January is what a year-only date becomes when stored as a date (historical registers
            # write "born 1850" as 1850-01-01): agreement there, or with any date of the same year, is
            # a level of its own whose weight EM fits (different people of one rare name and birth
            # year "agreed exactly" on it).
            _level(
                "(t_dob_l = t_ydate_l OR t_dob_r = t_ydate_r) AND t_yob_l = t_yob_r",
                "same year, one date on 1 January (possibly year only)",
                0.03,
                0.001,
            ),
            _level("t_dob_l = t_dob_swap_r", "day and month swapped", 0.01, 0.00002),
            _level(
                " OR ".join(f"t_dob_digit_l[{i}] = t_dob_digit_r[{i}]" for i in range(1, 9)),
                "one digit differs",
                0.02,
                0.002,
            ),
            _level("t_ym_l = t_ym_r", "same year and month", 0.015, 0.001),
            _level("list_contains(t_ym_near_l, t_ym_r)", "neighbouring months", 0.01, 0.002),
            _level("t_yob_l = t_yob_r", "same year", 0.015, 0.01),
            _level("ELSE", "else", 0.03, 0.98488),
        ],
    }
    # Street, ZIP, city and phone are one comparison: a household shares them all, so scoring them as
    # independent fields would count the same evidence (same home) several times.
    contact = {
        "output_column_name": "contact",
        "comparison_description": "street, ZIP, city and phone tokens, street Bloom filter",
        "comparison_levels": [
            _level(
                " AND ".join(
                    f"({c}_l IS NULL OR {c}_r IS NULL)" for c in ("t_street", "t_zip", "t_city", "t_phone")
                ),
                "null",
                null=True,
            ),
            _level(
                "t_street_l = t_street_r AND t_phone_l = t_phone_r", "same street line and phone", 0.5, 0.0005
            ),
            _level("t_street_l = t_street_r", "same street line", 0.3, 0.001),
            _level("t_phone_l = t_phone_r", "same phone", 0.05, 0.0005),
            _level(
                dice("street") + " >= 0.7 AND (t_zip_l = t_zip_r OR t_city_l = t_city_r)",
                "similar street, same ZIP or city",
                0.03,
                0.0005,
            ),
            _level("t_zip_l = t_zip_r", "same ZIP", 0.02, 0.02, tf="t_zip" if tf else None),
            _level("t_city_l = t_city_r", "same city", 0.02, 0.03, tf="t_city" if tf else None),
            _level("ELSE", "else", 0.08, 0.948),
        ],
    }
    # Email: personal more often than an address, but a family can share one (household guard). The
    # user part alone (same user, other domain) is a blocking pass but no level: user parts are built
    # from names (jjones, a.s), so their agreement repeats the name comparisons' evidence and, scored
    # as independent, merged different people of one name (fake_20000: most false merges).
    # For the same reason there is no level for a Dice similarity between 0.6 and 0.8: two people of one
    # name have emails that similar (isabella.jones8@... / isabellejones77@...), and with tf-adjusted
    # names it was the last push over the threshold for most false merges left on fake_20000.
    email = {
        "output_column_name": "email",
        "comparison_description": "email token, email Bloom filter",
        "comparison_levels": [
            _level("t_email_l IS NULL OR t_email_r IS NULL", "null", null=True),
            _level("t_email_l = t_email_r", "exact", 0.8, 0.00001),
            _level(dice("email") + " >= 0.8", "dice >= 0.8", 0.07, 0.0001),
            _level("ELSE", "else", 0.06, 0.99884),
        ],
    }
    # Typed identifiers (national id other than the SSN, driver's licence, passport, MRN, member id): one
    # comparison, since any of them agreeing is the same evidence (a number issued to this person), and
    # only within one type and system (tokens.sql: offer/accept lists). A typo level on the keyed
    # deletion neighbourhoods (one character wrong, added, dropped, two swapped). "else" only for
    # documents of one type and issuer that differ: record numbers differ between a person's two
    # registrations, so only their agreement counts; documents change on renewal, so it weighs little.
    identifiers = {
        "output_column_name": "identifier",
        "comparison_description": "typed identifier tokens (same type and system), deletion-neighbourhood tokens",
        "comparison_levels": [
            _level(
                "t_id_offer_l IS NULL OR t_id_offer_r IS NULL OR NOT coalesce("
                + " OR ".join(_offered(k) for k in ("t_id", "t_idnear", "t_idkind"))
                + ", false)",
                "null",
                null=True,
            ),
            _level(_offered("t_id"), "same identifier (type, system, value)", 0.9, 0.00001),
            _level(_offered("t_idnear"), "one character apart", 0.05, 0.00005),
            _level("ELSE", "else (same type and issuer, different number)", 0.05, 0.99994),
        ],
    }
    return [
        given,
        family,
        dob,
        _exact("sex", "sex", 0.98, 0.5),
        _exact("ssn", "t_ssn", 0.98, 0.00001),
        identifiers,
        contact,
        email,
    ]


def _offered(col: str) -> str:
    """SQL: one record's `col`_offer list meets the other's `col`_accept list (tokens.sql, identifiers)."""
    return f"(list_has_any({col}_offer_l, {col}_accept_r) OR list_has_any({col}_accept_l, {col}_offer_r))"


def _exact(name: str, col: str, m: float, u: float) -> dict:
    return {
        "output_column_name": name,
        "comparison_description": f"{name}: exact agreement of the keyed token",
        "comparison_levels": [
            _level(f"{col}_l IS NULL OR {col}_r IS NULL", "null", null=True),
            _level(f"{col}_l = {col}_r", "exact", m, u),
            _level("ELSE", "else", 1 - m, 1 - u),
        ],
    }


def dice(field: str) -> str:
    """SQL of the Dice similarity of the two records' Bloom filters of `field`, on the word columns
    model.register_input() makes (integer AND and bit_count: far cheaper than on a BIT string)."""
    common = " + ".join(
        f"bit_count(bf_{field}_{i}_l & bf_{field}_{i}_r)::INTEGER" for i in range(bloom_words(field))
    )
    return f"(2.0 * ({common}) / nullif(bf_{field}_n_l + bf_{field}_n_r, 0))"


def bloom_words(field: str) -> int:
    return -(-BLOOM[field][0] // WORD)
