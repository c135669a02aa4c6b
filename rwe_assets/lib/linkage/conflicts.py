"""Conflict-aware clustering: within a connected component that holds a conflict, links are taken
again strongest first and a link that would join two groups stating different birth dates, years,
SSNs or emails is held (split_conflicts; called by cluster.connected_components).
"""

from __future__ import annotations

from collections import Counter

import duckdb
import pyarrow as pa

from rwe_assets.lib.sql_text import quote_literal

# Conflict-aware clustering. Connected components chain: A~B and B~C join A and C however clearly
# they conflict, and one weak link joins two people's whole record sets (historical set: clusters of
# 10-20 namesakes' records joined by one pair). Within the few components that hold a conflict, links
# are taken again strongest first (a reviewer's 'match' first, then by match weight), and a link is
# held for review when the two groups it would join conflict: each states, by at least CONSENSUS_MIN
# records and a majority of those with a value, another birth date (not a 1 January), birth year,
# SSN or email; or a reviewer decided 'non_match' on a pair of records across them. A typo is one record's: a
# value repeated by three records is the person's, so agreed values that differ are two people
# (one-edit typos and 1 January dates need no special case). A single record never has a consensus,
# so a noisy record still joins the group it matches. An email is a household's at most (a family's
# shared address is one value on both sides, no conflict): two groups each confirming another email
# were two namesakes joined by one near-identical record on fake_20000 (j.s27@... and js@...).
# But an email changes over a life and an SSN or birth date does not: groups agreeing on the SSN, or
# on the full birth date and first given name (STABLE_AGREEMENT), are one person whose email changed.
# A nickname is the same first name there (Bill ~ William), by the list's direct relation as in the
# comparisons (Robert and William, both listed under Bill, are not), when it is unambiguous: the name
# stands for one other name only, or both groups state one sex. Chris stands for Christopher and
# Christina: boy/girl twins of one birth date, each with an email, would otherwise be one person.
# A source declared deduplicated (`deduplicated`: its records are distinct people) keeps its records
# apart: a link that would join two groups each holding a record of that source is held
# ('same_source'), so the records of two such sources link one to one.
CONSENSUS_MIN = 3
CONSENSUS_FIELDS = {
    "birth_date": "CASE WHEN t_dob <> t_ydate THEN t_dob END",
    "birth_year": "t_yob",
    "ssn": "t_ssn",
    "email": "t_email",
}
# Read beside CONSENSUS_FIELDS but never a conflict on its own (a given name has nicknames and spellings).
GIVEN_FIELD = ("given_first", "t_given_first")
# Read beside them for the nickname waiver only (a nickname shared by men's and women's names).
SEX_FIELD = ("sex", "sex")
# Groups agreeing by consensus on all the fields of one of these sets are one person (see above).
STABLE_AGREEMENT = (("ssn",), ("birth_date", "given_first"))
CHANGEABLE_FIELDS = frozenset({"email"})


def split_conflicts(con: duckdb.DuckDBPyConnection, deduplicated: tuple[str, ...] = ()) -> int:
    """Re-cluster the components of lk_cluster that hold a conflict (see above): held links become
    'review' with hold_reason 'conflict_<field>', 'reviewer_non_match' or 'same_source' (two records
    of one of the `deduplicated` sources), and lk_cluster is updated for those components only. Python
    runs over those components' records and links, never over all rows. Returns the links held."""
    kept_apart = (
        f"CASE WHEN source_system IN ({', '.join(quote_literal(s) for s in deduplicated)}) THEN source_system END"
        if deduplicated
        else "NULL"
    )
    _conflict_candidates(con, kept_apart)
    component = (
        " FROM lk_tokens JOIN lk_cluster USING (record_id) SEMI JOIN lk_conflict_components USING (cluster)"
    )
    records = con.sql(
        "SELECT record_id, "
        + ", ".join(f"{sql} AS {f}" for f, sql in (*CONSENSUS_FIELDS.items(), GIVEN_FIELD, SEX_FIELD))
        + f", {kept_apart} AS kept_apart"
        + component
    ).fetchall()
    if not records:
        return 0
    nicknames = dict(
        con.execute(
            f"SELECT DISTINCT {GIVEN_FIELD[1]}, list_filter(t_given_forms, f -> f <> {GIVEN_FIELD[1]}) "
            f"FROM (SELECT {GIVEN_FIELD[1]}, t_given_forms {component}) WHERE {GIVEN_FIELD[1]} IS NOT NULL"
        ).fetchall()
    )
    edges = con.execute(
        """
        SELECT p.record_id_l, p.record_id_r, p.method = 'clerical' FROM lk_pairs p
        JOIN lk_cluster c ON c.record_id = p.record_id_l SEMI JOIN lk_conflict_components USING (cluster)
        WHERE p.decision = 'match'
        ORDER BY p.method = 'clerical' DESC, p.match_weight DESC NULLS LAST, p.record_id_l, p.record_id_r
        """
    ).fetchall()
    apart = con.execute(
        "SELECT record_id_l, record_id_r FROM lk_clerical_decisions WHERE decision = 'non_match'"
    ).fetchall()
    held, cluster_of = _union_without_conflict(records, edges, apart, nicknames)
    if not held:
        return 0
    con.register(
        "lk_conflict_held", pa.table({k: [h[i] for h in held] for i, k in enumerate(("l", "r", "why"))})
    )
    con.execute(
        "UPDATE lk_pairs SET decision = 'review', hold_reason = h.why FROM lk_conflict_held h "
        "WHERE lk_pairs.record_id_l = h.l AND lk_pairs.record_id_r = h.r"
    )
    con.register(
        "lk_conflict_clusters",
        pa.table({"record_id": list(cluster_of), "cluster": list(cluster_of.values())}),
    )
    con.execute(
        "UPDATE lk_cluster SET cluster = n.cluster FROM lk_conflict_clusters n WHERE lk_cluster.record_id = n.record_id"
    )
    return len(held)


def _conflict_candidates(con, kept_apart: str = "NULL") -> None:
    """TEMP TABLE lk_conflict_components(cluster): components where some field has two values each held
    by CONSENSUS_MIN records, that hold both records of a reviewer's 'non_match', or two records of a
    source kept apart (`kept_apart`: SQL giving a record's source when it is one, else NULL)."""
    values = " UNION ALL ".join(
        f"SELECT cluster, '{f}' AS field, {sql} AS value FROM lk_tokens JOIN lk_cluster USING (record_id)"
        for f, sql in CONSENSUS_FIELDS.items()
    )
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE lk_conflict_components AS
        WITH supported AS (
            SELECT cluster, field, value FROM ({values}) WHERE value IS NOT NULL
            GROUP BY ALL HAVING count(*) >= {CONSENSUS_MIN}
        )
        SELECT cluster FROM supported GROUP BY cluster, field HAVING count(*) >= 2
        UNION
        SELECT l.cluster FROM lk_clerical_decisions d JOIN lk_cluster l ON l.record_id = d.record_id_l
        JOIN lk_cluster r ON r.record_id = d.record_id_r WHERE d.decision = 'non_match' AND l.cluster = r.cluster
        UNION
        SELECT cluster FROM (SELECT cluster, {kept_apart} AS source FROM lk_tokens JOIN lk_cluster USING (record_id))
        WHERE source IS NOT NULL GROUP BY cluster, source HAVING count(*) >= 2
        """
    )


def _union_without_conflict(
    records: list[tuple], edges: list[tuple], apart: list[tuple], nicknames: dict | None = None
):
    """Union-find over `edges` (strongest first; clerical ones are never held). A record is (id, the
    CONSENSUS_FIELDS' values, its GIVEN_FIELD and SEX_FIELD values, its source if kept apart);
    `nicknames` maps a first name's token to the tokens of the other names it stands for. Returns
    the held links (l, r, reason) and each record's cluster (the smallest record id of its group)."""
    parent = {r[0]: r[0] for r in records}
    counts = {r[0]: [Counter() if v is None else Counter([v]) for v in r[1:-1]] for r in records}
    sources = {r[0]: {r[-1]} - {None} for r in records}
    members = {r[0]: [r[0]] for r in records}
    partners: dict[str, set[str]] = {}
    for left, right in apart:
        if left in parent and right in parent:
            partners.setdefault(left, set()).add(right)
            partners.setdefault(right, set()).add(left)

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    held = []
    for left, right, clerical in edges:
        a, b = find(left), find(right)
        if a == b:
            continue
        why = (
            None
            if clerical
            else _conflict(counts[a], counts[b], members[a], members[b], partners, find, nicknames)
        )
        if not why and not clerical and sources[a] & sources[b]:
            why = "same_source"
        if why:
            held.append((left, right, why))
            continue
        if len(members[a]) < len(members[b]):
            a, b = b, a
        parent[b] = a
        members[a] += members.pop(b)
        counts[a] = [x + y for x, y in zip(counts[a], counts.pop(b), strict=True)]
        sources[a] |= sources.pop(b)
    return held, {x: min(members[find(x)]) for x in parent}


def _conflict(counts_a, counts_b, members_a, members_b, partners, find, nicknames=None) -> str | None:
    fields = (*CONSENSUS_FIELDS, GIVEN_FIELD[0], SEX_FIELD[0])
    said_a = {f: _consensus(c) for f, c in zip(fields, counts_a, strict=True)}
    said_b = {f: _consensus(c) for f, c in zip(fields, counts_b, strict=True)}
    differ = [f for f in CONSENSUS_FIELDS if None not in (said_a[f], said_b[f]) and said_a[f] != said_b[f]]
    if differ and not (set(differ) <= CHANGEABLE_FIELDS and _stable_agreement(said_a, said_b, nicknames)):
        return f"conflict_{differ[0]}"
    small, other = (members_a, members_b) if len(members_a) <= len(members_b) else (members_b, members_a)
    root = find(other[0])
    if any(find(p) == root for x in small for p in partners.get(x, ())):
        return "reviewer_non_match"
    return None


def _stable_agreement(said_a: dict, said_b: dict, nicknames: dict | None = None) -> bool:
    """Whether two groups' consensus values agree on every field of one STABLE_AGREEMENT set (first
    names also when one is an unambiguous nickname of the other, _same_first_name)."""

    def same(f: str) -> bool:
        a, b = said_a[f], said_b[f]
        if a is None or b is None:
            return False
        return a == b or (f == GIVEN_FIELD[0] and _same_first_name(a, b, said_a, said_b, nicknames))

    return any(all(same(f) for f in fields) for fields in STABLE_AGREEMENT)


def _same_first_name(a, b, said_a: dict, said_b: dict, nicknames: dict | None) -> bool:
    """Whether first names `a` and `b` are directly related in `nicknames` and the relation is
    unambiguous: both groups state one sex, or the name stands for that other name only."""
    forms_a, forms_b = (nicknames or {}).get(a) or [], (nicknames or {}).get(b) or []
    if b not in forms_a and a not in forms_b:
        return False
    sex = said_a[SEX_FIELD[0]]
    return (sex is not None and sex == said_b[SEX_FIELD[0]]) or forms_a == [b] or forms_b == [a]


def _consensus(counter: Counter):
    """The value held by at least CONSENSUS_MIN records and by most of those with one, else None."""
    if not counter:
        return None
    value, n = counter.most_common(1)[0]
    return value if n >= CONSENSUS_MIN and 2 * n > sum(counter.values()) else None
