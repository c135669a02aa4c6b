-- Persons with a breast cancer condition who carry BRCA1 c.5266dupC (NM_007294.4:c.5266dupC,
-- GRCh38 chr17:43057062 T>TG, rs80357906).
-- Breast cancer: SNOMED 254837009 "Malignant tumor of breast" or any descendant, from any source
-- (EHR or claims, after mapping). The variant: a call on BRCA1 whose HGVS c. is c.5266dupC on any
-- transcript version, or, when the call is unannotated, its normalized GRCh38 coordinates.
WITH breast_cancer AS (
    SELECT ca.descendant_concept_id AS concept_id
    FROM cdm.concept c
    JOIN cdm.concept_ancestor ca ON ca.ancestor_concept_id = c.concept_id
    WHERE c.vocabulary_id = 'SNOMED' AND c.concept_code = '254837009'
    UNION
    SELECT concept_id FROM cdm.concept WHERE vocabulary_id = 'SNOMED' AND concept_code = '254837009'
),
carriers AS (
    SELECT DISTINCT vo.person_id
    FROM cdm.variant_occurrence vo
    LEFT JOIN cdm.target_gene tg ON tg.target_gene_id = vo.target_gene1_id
    WHERE (tg.hgnc_symbol = 'BRCA1' AND regexp_matches(vo.hgvs_c, '(^|:)c\.5266dupC$'))
       OR (vo.reference_genome = 'GRCh38' AND vo.chromosome IN ('chr17', '17') AND vo.position = 43057062
           AND vo.reference_allele = 'T' AND vo.alternate_allele = 'TG')
)
SELECT DISTINCT co.person_id
FROM cdm.condition_occurrence co
JOIN breast_cancer bc ON bc.concept_id = co.condition_concept_id
JOIN carriers USING (person_id)
ORDER BY co.person_id
