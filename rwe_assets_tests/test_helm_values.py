"""deploy/helm/values.yaml against what the dagster-user-deployments Helm chart (1.13.27) requires: the
required keys of its values.schema.json (dagster-io/dagster, helm/dagster/charts/dagster-user-deployments)
and the code location of workspace.yaml. Syntax and shape only; nothing is deployed."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
VALUES = ROOT / "deploy" / "helm" / "values.yaml"

# values.schema.json: "required" of the top level, of Global, of UserDeployment and of Image
TOP_LEVEL = {"dagsterHome", "postgresqlSecretName", "celeryConfigSecretName", "deployments", "imagePullSecrets",
             "serviceAccount", "global"}  # fmt: skip
GLOBAL = {"postgresqlSecretName", "dagsterHome", "serviceAccountName", "celeryConfigSecretName"}
DEPLOYMENT = {"name", "image", "port"}
IMAGE = {"repository", "pullPolicy"}
PULL_POLICIES = {"Always", "IfNotPresent", "Never"}


def check(values: dict) -> list[str]:
    """What the chart would refuse in `values`, as messages (empty: none)."""
    problems = [f"missing top-level key {key}" for key in sorted(TOP_LEVEL - values.keys())]
    problems += [f"missing global.{key}" for key in sorted(GLOBAL - (values.get("global") or {}).keys())]
    for deployment in values.get("deployments") or [{}]:
        problems += _deployment_problems(deployment)
    account = values.get("serviceAccount") or {}
    problems += [
        f"missing serviceAccount.{key}" for key in ("create", "name", "annotations") if key not in account
    ]
    return problems


def _deployment_problems(deployment: dict) -> list[str]:
    name = deployment.get("name", "?")
    problems = [f"{name}: missing {key}" for key in sorted(DEPLOYMENT - deployment.keys())]
    image = deployment.get("image") or {}
    problems += [f"{name}: missing image.{key}" for key in sorted(IMAGE - image.keys())]
    if image.get("pullPolicy") not in PULL_POLICIES:
        problems.append(f"{name}: image.pullPolicy must be one of {sorted(PULL_POLICIES)}")
    if not isinstance(deployment.get("port"), int):
        problems.append(f"{name}: port must be an integer")
    args = deployment.get("dagsterApiGrpcArgs") or deployment.get("codeServerArgs")
    if not (isinstance(args, list) and args and all(isinstance(a, str) for a in args)):
        problems.append(f"{name}: dagsterApiGrpcArgs (or codeServerArgs) must be a list of strings")
    for variable in deployment.get("env") or []:
        if not isinstance(variable, dict) or "name" not in variable:
            problems.append(f"{name}: env entries are {{name, value}} objects")
    return problems


def test_values_parse_and_hold_what_the_chart_requires():
    values = yaml.safe_load(VALUES.read_text())
    assert check(values) == []


def test_the_deployment_serves_the_workspace_code_location():
    workspace = yaml.safe_load((ROOT / "workspace.yaml").read_text())["load_from"][0]["python_module"]
    (deployment,) = yaml.safe_load(VALUES.read_text())["deployments"]
    args = deployment["dagsterApiGrpcArgs"]
    assert args[args.index("--module-name") + 1] == workspace["module_name"]
    assert args[args.index("--attribute") + 1] == workspace["attribute"]


def test_check_sees_what_the_chart_refuses():
    values = yaml.safe_load(VALUES.read_text())
    (deployment,) = values["deployments"]
    del values["global"]
    del deployment["port"]
    deployment["image"]["pullPolicy"] = "Sometimes"
    deployment["dagsterApiGrpcArgs"] = "-m rwe_assets.definitions"
    assert check(values) == [
        "missing top-level key global",
        "missing global.celeryConfigSecretName",
        "missing global.dagsterHome",
        "missing global.postgresqlSecretName",
        "missing global.serviceAccountName",
        "rwe-assets: missing port",
        "rwe-assets: image.pullPolicy must be one of ['Always', 'IfNotPresent', 'Never']",
        "rwe-assets: port must be an integer",
        "rwe-assets: dagsterApiGrpcArgs (or codeServerArgs) must be a list of strings",
    ]
