"""The Spark tests' guard (conftest.py): without Java they fail in CI and skip on a developer's machine."""

from __future__ import annotations

import shutil

import pytest

from rwe_assets_tests.lib.spark import conftest as spark_conftest


@pytest.fixture
def no_java(monkeypatch):
    real_which = shutil.which
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None if name == "java" else real_which(name))
    monkeypatch.delenv("JAVA_HOME", raising=False)


def test_without_java_ci_fails(no_java):
    with pytest.raises(pytest.fail.Exception, match=r"CI runs the Spark engine's tests: .*Java runtime"):
        spark_conftest.require_spark({"CI": "true"})


@pytest.mark.parametrize("environ", [{}, {"CI": ""}, {"CI": "false"}, {"CI": "0"}])
def test_without_java_a_developer_skips(no_java, environ):
    with pytest.raises(pytest.skip.Exception, match="Java runtime"):
        spark_conftest.require_spark(environ)


def test_with_java_and_pyspark_nothing_is_raised(monkeypatch):
    monkeypatch.setattr(spark_conftest, "spark_missing", lambda: None)
    spark_conftest.require_spark({"CI": "true"})
