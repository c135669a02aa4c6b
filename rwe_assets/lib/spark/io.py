"""Delta tables of the lake in Spark, without the delta-spark jars (Maven is out of reach here).

Reads: deltalake names the Parquet files of the table's current version (never a glob: files a merge
superseded are still on disk), Spark reads exactly those with the Delta schema, so a column that some
files lack reads as null. Where plain Parquet does not carry the table (partition columns, column
mapping, deletion vectors, ...) or the lake is on object storage (Spark's s3a:// needs the hadoop-aws
jars), the rows come through deltalake's own reader as Arrow instead.

Writes: Spark writes Parquet into a scratch folder, and deltalake commits those rows as one Delta
transaction (lib/lake.py's writer, local or S3), so a failed Spark job commits nothing.

A cluster would use delta-spark (`spark.read.format("delta")`, `df.write.format("delta")`) and
hadoop-aws instead; docs/operations.md ("The CDM build on Spark").
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as pads

from rwe_assets.lib import lake

# Reader features a plain Parquet read of the active files honours (as in lib/lake.py).
_PLAIN_READER_FEATURES = {"timestampNtz"}


def read_delta(spark, path: lake.LakePath):
    """The live rows of the Delta table at `path` as a Spark DataFrame, columns in the Delta schema's
    order. Raises FileNotFoundError when there is no table."""
    from pyspark.sql.pandas.types import from_arrow_schema

    table = lake.open_table(path)
    if table is None:
        raise FileNotFoundError(f"no Delta table at {path}")
    arrow_schema = pa.schema(table.schema().to_arrow())
    files = table.file_uris()
    if not files:
        return spark.createDataFrame([], from_arrow_schema(arrow_schema))
    if _plain(table) and not lake.is_remote(path):
        return spark.read.schema(from_arrow_schema(arrow_schema)).parquet(*files)
    return spark.createDataFrame(table.to_pyarrow_dataset().to_table())


def write_delta(df, path: lake.LakePath, scratch_dir: Path, *, mode: str = "overwrite") -> int:
    """Commit the rows of Spark DataFrame `df` as the Delta table at `path` (mode overwrite or append)
    and return the number of rows written. Spark writes Parquet under `scratch_dir`; deltalake reads
    those files as one Arrow dataset and commits them; the scratch files are removed either way."""
    if mode not in ("overwrite", "append"):
        raise ValueError(f"expected mode overwrite or append, found {mode!r}")
    staged = Path(scratch_dir) / f"spark-{uuid.uuid4().hex}"
    try:
        df.write.mode("error").parquet(str(staged))
        dataset = pads.dataset(str(staged), format="parquet", exclude_invalid_files=True)
        schema = _delta_compatible(dataset.schema)
        rows = dataset.count_rows()
        batches = (batch.cast(schema) for batch in dataset.to_batches())
        reader = pa.RecordBatchReader.from_batches(schema, batches)
        options = {"schema_mode": "overwrite"} if mode == "overwrite" else {"schema_mode": "merge"}
        lake.write(path, reader, mode=mode, **options)
        return rows
    finally:
        shutil.rmtree(staged, ignore_errors=True)


def _plain(table) -> bool:
    metadata, protocol = table.metadata(), table.protocol()
    return (
        not metadata.partition_columns
        and "delta.columnMapping.mode" not in metadata.configuration
        and set(protocol.reader_features or ()) <= _PLAIN_READER_FEATURES
    )


def _delta_compatible(schema: pa.Schema) -> pa.Schema:
    """Spark's Parquet as Delta takes it: a column Spark wrote as all-null type (NullType) has no Delta
    type; it is written as a string column of nulls."""
    return pa.schema(
        [field.with_type(pa.string()) if pa.types.is_null(field.type) else field for field in schema]
    )
