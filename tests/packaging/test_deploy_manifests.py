"""The examples in deploy/ are valid, agree with each other and with billsync itself.

No Docker engine or cluster runs here, so the files are checked statically: the compose
file against the compose-spec schema (vendored by check-jsonschema), the Kubernetes
manifests against the API's strict schemas (shipped by kubernetes-validate), and both
against billsync: every BILLSYNC_* name is a real setting, every secret arrives as a
file, ports and probes agree, the configuration they describe loads, the compose
scheduler loop survives the exit codes of `billsync run`, and every `billsync` command
line in the operating docs exists.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import SecretStr
from sqlalchemy.engine import make_url

from billsync.config.loader import CONFIG_ENV, load_settings
from billsync.config.settings import ENV_NESTED_DELIMITER, ENV_PREFIX, sections_of, with_connectors
from billsync.core.plugins import installed_specs
from billsync.core.settings import secret_field_names

SECTIONS = sections_of(with_connectors(installed_specs()[0]))

REPO_ROOT = Path(__file__).resolve().parents[2]
DEPLOY = REPO_ROOT / "deploy"
K8S = DEPLOY / "k8s"
COMPOSE_FILE = DEPLOY / "compose.yaml"
IMAGE = "ghcr.io/example/billsync:0.1.0"
# The oldest Kubernetes the manifests promise (deploy/README.md): podFailurePolicy is GA
# from 1.31, CronJob timeZone from 1.27.
K8S_MIN_VERSION = "1.31"
SERVE_PORT = 8080
BILLSYNC_SERVICES = ("migrate", "billsync-serve", "billsync-scheduler")
# BILLSYNC_* names that are not settings but are read by billsync.
NON_SETTING_NAMES = {CONFIG_ENV, "BILLSYNC_DEBUG"}
# Secret values reach billsync as files; these name such files rather than hold values.
FILE_POINTERS = re.compile(r"(_FILE|^PGSERVICEFILE)$")
SECRET_LOOKING = re.compile(r"PASSWORD|SECRET|TOKEN|_KEY")
LIST_SECRET_ENV = "BILLSYNC_STRIPE__WEBHOOK_SECRETS_FILE"


# --- loading -----------------------------------------------------------------------


def _load_all(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))


def _k8s_files() -> list[Path]:
    return sorted(p for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")


@pytest.fixture(scope="module")
def k8s() -> dict[str, dict[str, Any]]:
    """Every Kubernetes object in deploy/k8s by kind (one object of each kind)."""
    found: dict[str, dict[str, Any]] = {}
    for path in _k8s_files():
        for doc in _load_all(path):
            assert doc["kind"] not in found, f"{path.name}: a second {doc['kind']}"
            found[doc["kind"]] = doc
    return found


def _pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    if workload["kind"] == "CronJob":
        return workload["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return workload["spec"]["template"]["spec"]


def _container(workload: dict[str, Any]) -> dict[str, Any]:
    containers = _pod_spec(workload)["containers"]
    assert len(containers) == 1, "one billsync container per pod"
    return containers[0]


def _k8s_env(container: dict[str, Any]) -> dict[str, str]:
    env = {}
    for item in container.get("env", []):
        assert "valueFrom" not in item, f"{item['name']}: secrets come as files, not env refs"
        env[item["name"]] = str(item["value"])
    return env


def _compose_env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    assert isinstance(env, dict), "environment as a mapping, so the checks can read it"
    return {name: str(value) for name, value in env.items()}


def _workload_env(kind: str, name: str, compose: dict, k8s: dict) -> dict[str, str]:
    if kind == "compose":
        return _compose_env(compose["services"][name])
    return _k8s_env(_container(k8s[name]))


WORKLOADS = [
    ("compose", "migrate"),
    ("compose", "billsync-serve"),
    ("compose", "billsync-scheduler"),
    ("k8s", "Deployment"),
    ("k8s", "CronJob"),
]


# --- schemas -----------------------------------------------------------------------


def test_compose_file_matches_the_compose_spec() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "check_jsonschema",
            "--builtin-schema",
            "vendor.compose-spec",
            str(COMPOSE_FILE),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if "No module named check_jsonschema" in result.stderr:
        pytest.fail("check-jsonschema not found: install the dev extra (pip install -e '.[dev]')")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("path", _k8s_files(), ids=lambda p: p.name)
def test_kubernetes_objects_match_the_api_schema(path: Path) -> None:
    try:
        import kubernetes_validate
    except ImportError:
        pytest.fail("kubernetes-validate not found: install the dev extra")
    for doc in _load_all(path):
        for version in (K8S_MIN_VERSION, kubernetes_validate.latest_version()):
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                where = ".".join(str(p) for p in exc.path)
                pytest.fail(
                    f"{path.name} ({doc['kind']}, Kubernetes {version}): {where}: {exc.message}"
                )


def test_kustomization_applies_everything_but_the_secret_example() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text(encoding="utf-8"))
    resources = kustomization["resources"]
    expected = {p.name for p in _k8s_files()} - {"secret.example.yaml"}
    assert set(resources) == expected
    assert "secret.example.yaml" not in resources, "it would overwrite the real Secret"
    [image] = kustomization["images"]
    assert f"{image['name']}:{image['newTag']}" == IMAGE


# --- the CronJob -----------------------------------------------------------------


def test_cronjob_runs_one_cycle_every_15_minutes_never_overlapping(k8s: dict) -> None:
    cronjob = k8s["CronJob"]
    assert cronjob["apiVersion"] == "batch/v1"
    spec = cronjob["spec"]
    assert spec["schedule"] == "*/15 * * * *"
    assert spec["concurrencyPolicy"] == "Forbid"
    assert 0 < spec["startingDeadlineSeconds"] <= 900
    assert spec["successfulJobsHistoryLimit"] >= 1 and spec["failedJobsHistoryLimit"] >= 1
    job = spec["jobTemplate"]["spec"]
    assert 0 < job["backoffLimit"] <= 3
    assert job["activeDeadlineSeconds"] > 0
    assert _pod_spec(cronjob)["restartPolicy"] == "Never"
    container = _container(cronjob)
    assert container["image"] == IMAGE
    assert container["command"] == ["/bin/sh", "-c"]
    assert container["args"][0].startswith("billsync run &")


@pytest.mark.parametrize(("code", "job_sees"), [(0, 0), (1, 0), (2, 2), (3, 0), (70, 70)])
def test_cronjob_maps_queued_and_lease_held_to_success(
    k8s: dict, tmp_path: Path, code: int, job_sees: int
) -> None:
    """Exit 1 (queued for retry) and 3 (lease held) are a healthy cluster's normal outcomes:
    the Job completes; 2 and crashes still fail it."""
    fake = tmp_path / "billsync"
    fake.write_text(f"#!/bin/sh\nexit {code}\n", encoding="utf-8")
    fake.chmod(0o755)
    script = _container(k8s["CronJob"])["args"][0]
    env = {"PATH": f"{tmp_path}:/usr/bin:/bin"}
    done = subprocess.run(["/bin/sh", "-c", script], env=env, check=False, timeout=30)
    assert done.returncode == job_sees


def test_cronjob_does_not_retry_the_exit_codes_a_retry_cannot_fix(k8s: dict) -> None:
    """2 (configuration) ends the Job as Failed; 1 and 3 never reach Kubernetes (the
    container maps them to 0); other failures (crash, OOM kill) count towards
    backoffLimit."""
    cronjob = k8s["CronJob"]
    rules = cronjob["spec"]["jobTemplate"]["spec"]["podFailurePolicy"]["rules"]
    fail_job = [r for r in rules if r["action"] == "FailJob" and "onExitCodes" in r]
    assert len(fail_job) == 1
    codes = fail_job[0]["onExitCodes"]
    assert codes["operator"] == "In"
    assert set(codes["values"]) == {2}
    assert codes["containerName"] == _container(cronjob)["name"]
    # The API server accepts podFailurePolicy only with restartPolicy Never.
    assert _pod_spec(cronjob)["restartPolicy"] == "Never"
    assert all(r["action"] in {"FailJob", "Ignore", "Count", "FailIndex"} for r in rules)


# --- the Deployment and Service -----------------------------------------------------


def _port_number(container: dict[str, Any], port: int | str) -> int:
    if isinstance(port, int):
        return port
    named = {p["name"]: p["containerPort"] for p in container["ports"] if "name" in p}
    assert port in named, f"no container port named {port!r}"
    return int(named[port])


def _option(argv: list[str], name: str) -> str:
    assert name in argv, f"{argv} has no {name}"
    return argv[argv.index(name) + 1]


def test_deployment_serves_on_the_port_its_probes_and_service_use(k8s: dict) -> None:
    deployment, service = k8s["Deployment"], k8s["Service"]
    assert deployment["spec"]["replicas"] == 2
    container = _container(deployment)
    argv = container["command"] + container.get("args", [])
    assert argv[:2] == ["billsync", "serve"]
    serve_port = int(_option(argv, "--port"))
    assert [p["containerPort"] for p in container["ports"]] == [serve_port]

    probes = {
        kind: container[kind]["httpGet"]
        for kind in ("startupProbe", "livenessProbe", "readinessProbe")
    }
    assert probes["livenessProbe"]["path"] == "/healthz"
    assert probes["startupProbe"]["path"] == "/healthz"
    assert probes["readinessProbe"]["path"] == "/readyz"
    for kind, probe in probes.items():
        assert _port_number(container, probe["port"]) == serve_port, kind

    [port] = service["spec"]["ports"]
    assert _port_number(container, port["targetPort"]) == serve_port
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    selector = service["spec"]["selector"]
    assert selector.items() <= pod_labels.items()
    assert deployment["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    run_labels = k8s["CronJob"]["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"]
    assert not selector.items() <= run_labels.items(), "the Service must not pick cron pods"


def test_deployment_outlives_servings_graceful_shutdown(k8s: dict) -> None:
    from billsync.sync.cli.serve_cmd import GRACEFUL_SHUTDOWN_SECONDS

    spec = _pod_spec(k8s["Deployment"])
    pre_stop = _container(k8s["Deployment"])["lifecycle"]["preStop"]["exec"]["command"]
    pre_stop_seconds = int(pre_stop[-1]) if pre_stop[0] == "sleep" else 0
    assert spec["terminationGracePeriodSeconds"] > GRACEFUL_SHUTDOWN_SECONDS + pre_stop_seconds


@pytest.mark.parametrize("kind", ["Deployment", "CronJob"])
def test_pods_run_as_the_images_non_root_user_on_a_read_only_root(k8s: dict, kind: str) -> None:
    workload = k8s[kind]
    pod, container = _pod_spec(workload), _container(workload)
    security = {**pod.get("securityContext", {}), **container.get("securityContext", {})}
    assert security["runAsNonRoot"] is True
    assert security["runAsUser"] == 10001  # the Dockerfile's USER
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    volumes = {v["name"]: v for v in pod["volumes"]}
    tmp = [m for m in container["volumeMounts"] if m["mountPath"] == "/tmp"]
    assert len(tmp) == 1 and "emptyDir" in volumes[tmp[0]["name"]]
    resources = container["resources"]
    assert {"cpu", "memory"} <= resources["requests"].keys()
    assert "memory" in resources["limits"]
    assert container["image"] == IMAGE


# --- compose -------------------------------------------------------------------------


def test_compose_services_and_their_start_order(compose: dict) -> None:
    services = compose["services"]
    assert set(services) == {"postgres", *BILLSYNC_SERVICES}
    postgres = services["postgres"]
    assert postgres["image"].startswith("postgres:")
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    assert any(str(v).startswith("pgdata:") for v in postgres["volumes"])
    assert "pgdata" in compose["volumes"]
    assert services["migrate"]["command"] == ["migrate"]
    assert services["migrate"]["restart"] == "no"
    assert services["migrate"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    for name in ("billsync-serve", "billsync-scheduler"):
        assert services[name]["depends_on"] == {
            "postgres": {"condition": "service_healthy"},
            "migrate": {"condition": "service_completed_successfully"},
        }, name
        assert services[name]["restart"] == "unless-stopped"
    for name in BILLSYNC_SERVICES:
        service = services[name]
        assert service["image"] == IMAGE
        assert service["init"] is True, f"{name}: SIGTERM must reach billsync"
        env = _compose_env(service)
        [config] = [v for v in service["volumes"] if v["target"] == env[CONFIG_ENV]]
        assert config["read_only"] is True
        assert (DEPLOY / config["source"]).is_file()


def test_compose_serve_health_check_probes_the_port_it_serves(compose: dict) -> None:
    serve = compose["services"]["billsync-serve"]
    assert serve["command"][0] == "serve"
    port = int(_option(serve["command"], "--port"))
    assert port == SERVE_PORT
    assert any(str(p).endswith(f":{port}") for p in serve["ports"])
    check = " ".join(serve["healthcheck"]["test"])
    assert f"http://127.0.0.1:{port}/healthz" in check
    assert "curl" not in check, "python:3.11-slim has no curl"
    # The image's HEALTHCHECK means something only for serve.
    for name in ("migrate", "billsync-scheduler"):
        assert compose["services"][name]["healthcheck"] == {"disable": True}


# --- secrets and settings --------------------------------------------------------------


def _setting_problem(name: str) -> str | None:
    """Why ``name`` is not a billsync setting variable, or None if it is one."""
    if name in NON_SETTING_NAMES:
        return None
    parts = name.removeprefix(ENV_PREFIX).lower().split(ENV_NESTED_DELIMITER)
    if len(parts) != 2:
        return "not BILLSYNC_<SECTION>__<KEY>"
    section, key = parts
    model = SECTIONS.get(section)
    if model is None:
        return f"no section {section!r}"
    if key in model.model_fields:
        return None
    base = key.removesuffix("_file")
    if base != key and base in secret_field_names(model):
        return None
    if base != key and base in model.model_fields:
        return f"{section}.{base} is not a secret, so it has no _FILE form"
    return f"{section} has no key {key!r}"


def test_the_setting_name_check_catches_typos() -> None:
    assert _setting_problem("BILLSYNC_STRIPE__API_KEY_FILE") is None
    assert _setting_problem("BILLSYNC_SALESFORCE__PRIVATE_KEY_FILE") is None  # a path key
    assert _setting_problem("BILLSYNC_STRIPE__API_KEYS_FILE") is not None
    assert _setting_problem("BILLSYNC_LEDGER__URL_FILE") is not None
    assert _setting_problem("BILLSYNC_STRIPE_API_KEY") is not None
    assert _setting_problem("BILLSYNC_STIPE__API_KEY") is not None


def _operating_docs() -> dict[str, str]:
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(r"^## Operating billsync\n.*?(?=^## |\Z)", readme, re.M | re.S)
    assert match, "README.md has no '## Operating billsync' section"
    return {
        "README.md#operating-billsync": match.group(0),
        "deploy/README.md": (DEPLOY / "README.md").read_text(encoding="utf-8"),
    }


def _deploy_texts() -> dict[str, str]:
    files = [COMPOSE_FILE, DEPLOY / "billsync.yaml", *_k8s_files(), K8S / "kustomization.yaml"]
    texts = {str(p.relative_to(REPO_ROOT)): p.read_text(encoding="utf-8") for p in files}
    return {**texts, **_operating_docs()}


def test_every_billsync_variable_named_in_deploy_and_docs_is_a_real_setting() -> None:
    problems = []
    for source, text in _deploy_texts().items():
        for name in sorted(set(re.findall(r"\bBILLSYNC_[A-Z0-9_]*[A-Z0-9]", text))):
            why = _setting_problem(name)
            if why:
                problems.append(f"{source}: {name}: {why}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(("kind", "name"), WORKLOADS)
def test_no_secret_value_is_in_the_environment(kind: str, name: str, compose, k8s) -> None:
    for var, value in _workload_env(kind, name, compose, k8s).items():
        if FILE_POINTERS.search(var):
            assert value.startswith("/run/secrets/"), f"{var}={value}"
            continue
        assert not SECRET_LOOKING.search(var), f"{var} holds a secret value; use {var}_FILE"
        if var.startswith(ENV_PREFIX) and var not in NON_SETTING_NAMES:
            section, key = var.removeprefix(ENV_PREFIX).lower().split(ENV_NESTED_DELIMITER)
            assert key not in secret_field_names(SECTIONS[section]), f"{var} is a secret"
    postgres = _compose_env(compose["services"]["postgres"])
    assert "POSTGRES_PASSWORD" not in postgres and "POSTGRES_PASSWORD_FILE" in postgres


def test_compose_secret_files_are_the_services_secrets(compose: dict) -> None:
    declared = compose["secrets"]
    for name, service in compose["services"].items():
        mounted = set(service.get("secrets", []))
        assert mounted <= declared.keys(), name
        for var, value in _compose_env(service).items():
            if FILE_POINTERS.search(var) and value.startswith("/run/secrets/"):
                secret = value.removeprefix("/run/secrets/")
                assert secret in mounted, f"{name}: {var} names {secret}, not mounted"
    for name, secret in declared.items():
        assert secret["file"].startswith("./secrets/"), name


def _secret_example(k8s: dict) -> dict[str, Any]:
    secret = k8s["Secret"]
    assert secret["type"] == "Opaque"
    return secret


@pytest.mark.parametrize("kind", ["Deployment", "CronJob"])
def test_k8s_secret_files_are_keys_of_the_secret(k8s: dict, kind: str) -> None:
    secret = _secret_example(k8s)
    keys = set(secret["stringData"])
    pod, container = _pod_spec(k8s[kind]), _container(k8s[kind])
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {
        m["mountPath"]: volumes[m["name"]]["secret"]
        for m in container["volumeMounts"]
        if "secret" in volumes[m["name"]]
    }
    files: dict[str, str] = {}  # path in the pod -> Secret key
    for mount_path, source in mounts.items():
        assert source["secretName"] == secret["metadata"]["name"]
        assert source["defaultMode"] == 0o440, "readable by fsGroup 10001 only"
        items = source.get("items") or [{"key": k, "path": k} for k in keys]
        for item in items:
            assert item["key"] in keys, f"{kind}: key {item['key']} not in the Secret"
            files[f"{mount_path}/{item['path']}"] = item["key"]
    assert pod["securityContext"]["fsGroup"] == 10001
    for var, value in _k8s_env(container).items():
        if FILE_POINTERS.search(var):
            assert value in files, f"{kind}: {var}={value} is not a file of a mounted Secret"


def test_secret_example_holds_only_obvious_placeholders(k8s: dict) -> None:
    secret = _secret_example(k8s)
    assert "data" not in secret, "stringData only: base64 would hide what the values are"
    for key, value in secret["stringData"].items():
        assert "FAKE" in value, f"{key} does not look like a placeholder"
    used = set()
    for kind in ("Deployment", "CronJob"):
        used |= {
            Path(v).name
            for k, v in _k8s_env(_container(k8s[kind])).items()
            if FILE_POINTERS.search(k)
        }
    assert used == set(secret["stringData"]), "every key is used and every used key exists"


def _config_documents(k8s: dict) -> dict[str, str]:
    return {
        "deploy/billsync.yaml": (DEPLOY / "billsync.yaml").read_text(encoding="utf-8"),
        "deploy/k8s/configmap.yaml": k8s["ConfigMap"]["data"]["billsync.yaml"],
    }


def test_config_files_hold_no_secrets_and_no_ledger_url(k8s: dict) -> None:
    for source, text in _config_documents(k8s).items():
        data = yaml.safe_load(text)
        # The image's BILLSYNC_LEDGER__URL outranks the file: a URL here would be ignored.
        assert "ledger" not in data, source
        for section, values in data.items():
            secrets = secret_field_names(SECTIONS[section])
            for key in values:
                assert key.removesuffix("_file") not in secrets, f"{source}: {section}.{key}"


def _image_environment() -> dict[str, str]:
    """The ENV values the Dockerfile bakes in, which the manifests' env overrides."""
    text = (REPO_ROOT / "Dockerfile").read_text(encoding="utf-8")
    return dict(re.findall(r"\b(BILLSYNC_[A-Z0-9_]+)=(\S+)", text))


def _pod_environment(
    kind: str, name: str, compose: dict, k8s: dict, root: Path
) -> tuple[dict[str, str], dict[str, str]]:
    """The environment billsync would see in that container, with the config file and
    every secret file recreated under ``root`` with fake values; and those values."""
    env = {**_image_environment(), **_workload_env(kind, name, compose, k8s)}
    config = _config_documents(k8s)[
        "deploy/billsync.yaml" if kind == "compose" else "deploy/k8s/configmap.yaml"
    ]
    written: dict[str, str] = {}
    for var, value in list(env.items()):
        if var == CONFIG_ENV:
            content = config
        elif FILE_POINTERS.search(var):
            content = (
                "whsec_fakeone\nwhsec_faketwo\n" if var == LIST_SECRET_ENV else f"fake-{var}\n"
            )
        else:
            continue
        path = root / value.lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
        env[var] = str(path)
        written[var] = content
    return env, written


def _check_loaded(env: dict[str, str], written: dict[str, str]) -> None:
    settings = load_settings(None, env)
    url = make_url(settings.ledger.url)
    assert url.get_backend_name() == "postgresql", "the image's SQLite default won"
    assert "service" in url.query and url.password is None
    for var, content in written.items():
        if var in (CONFIG_ENV, "PGSERVICEFILE", "BILLSYNC_SALESFORCE__PRIVATE_KEY_FILE"):
            continue
        section, key = var.removeprefix(ENV_PREFIX).lower().split(ENV_NESTED_DELIMITER)
        value = getattr(getattr(settings, section), key.removesuffix("_file"))
        if isinstance(value, list):
            assert [v.get_secret_value() for v in value] == content.split()
        else:
            assert isinstance(value, SecretStr) and value.get_secret_value() == content.strip()


@pytest.mark.parametrize(("kind", "name"), WORKLOADS)
def test_configuration_loads_without_the_list_secret(kind, name, compose, k8s, tmp_path) -> None:
    env, written = _pod_environment(kind, name, compose, k8s, tmp_path)
    env.pop(LIST_SECRET_ENV, None)
    written.pop(LIST_SECRET_ENV, None)
    _check_loaded(env, written)


@pytest.mark.parametrize(("kind", "name"), WORKLOADS)
def test_configuration_loads_with_every_secret(kind, name, compose, k8s, tmp_path) -> None:
    env, written = _pod_environment(kind, name, compose, k8s, tmp_path)
    _check_loaded(env, written)


def test_the_ledger_service_name_is_an_entry_of_the_service_file(compose, k8s) -> None:
    example = k8s["Secret"]["stringData"]["pg_service.conf"]
    entries = set(re.findall(r"^\[([^\]]+)\]", example, re.M))
    for kind, name in WORKLOADS:
        url = make_url(_workload_env(kind, name, compose, k8s)["BILLSYNC_LEDGER__URL"])
        assert url.query["service"] in entries, (kind, name)


@pytest.mark.postgres
def test_the_service_file_ledger_url_migrates_a_real_database(
    postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, k8s: dict
) -> None:
    """What the pods do: a password-less URL naming a libpq service, whose entry (with the
    password) is in the secret file PGSERVICEFILE points at."""
    from billsync.sync.ledger import create_ledger_engine, is_current, upgrade_to_head

    env = _k8s_env(_container(k8s["Deployment"]))
    service = make_url(env["BILLSYNC_LEDGER__URL"]).query["service"]
    real = make_url(postgres_url)
    entry = {
        "host": real.host,
        "port": real.port,
        "dbname": real.database,
        "user": real.username,
        "password": real.password,
    }
    lines = [f"[{service}]"] + [f"{k}={v}" for k, v in entry.items() if v is not None]
    service_file = tmp_path / "pg_service.conf"
    service_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    service_file.chmod(0o440)  # as mounted from a Secret; libpq accepts it (not .pgpass)
    monkeypatch.setenv("PGSERVICEFILE", str(service_file))
    upgrade_to_head(env["BILLSYNC_LEDGER__URL"])
    engine = create_ledger_engine(env["BILLSYNC_LEDGER__URL"])
    try:
        assert is_current(engine)
    finally:
        engine.dispose()


# --- the compose scheduler loop --------------------------------------------------------


def _compose_interpolate(text: str, variables: dict[str, str]) -> str:
    """Compose's interpolation, as far as the scheduler uses it: ``$$`` is a literal
    ``$`` and ``${NAME:-default}`` a variable from the shell or .env."""

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, default = match.group(1), match.group(2)
        if name in variables:
            return variables[name]
        assert default is not None, f"${{{name}}} has no default"
        return default

    return re.sub(r"\$\$|\$\{(\w+)(?::-([^}]*))?\}", replace, text)


FAKE_BILLSYNC = """#!/bin/sh
n=$(( $(cat "$STATE/count" 2>/dev/null || echo 0) + 1 ))
echo "$n" > "$STATE/count"
echo "$n $*" >> "$STATE/calls"
case "$n" in 1) exit 1 ;; 2) exit 3 ;; 3) exit 2 ;; 4) exit 0 ;; esac
# The fifth cycle is a long one, still running when the container is stopped.
trap 'kill "$sleeper" 2>/dev/null; echo "$n terminated" >> "$STATE/calls"; exit 143' TERM
sleep 30 & sleeper=$!
touch "$STATE/running"
wait "$sleeper"
"""


@pytest.fixture
def scheduler(compose: dict, tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], Path]]:
    service = compose["services"]["billsync-scheduler"]
    assert service["entrypoint"] == ["/bin/sh", "-c"]
    [script] = service["command"]
    script = _compose_interpolate(script, {"RUN_INTERVAL_SECONDS": "0.05"})
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "billsync"
    fake.write_text(FAKE_BILLSYNC, encoding="utf-8")
    fake.chmod(0o755)
    env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "STATE": str(tmp_path)}
    process = subprocess.Popen(
        ["/bin/sh", "-c", script], env=env, stderr=subprocess.PIPE, text=True
    )
    try:
        yield process, tmp_path
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_scheduler_loop_survives_run_exit_codes_and_stops_on_sigterm(scheduler) -> None:
    process, state = scheduler
    deadline = time.monotonic() + 10
    while not (state / "running").exists():
        assert process.poll() is None, "the loop ended on an exit code of billsync run"
        assert time.monotonic() < deadline, "the loop did not reach its fifth cycle"
        time.sleep(0.02)
    process.send_signal(signal.SIGTERM)  # what docker stop does, through init
    _, stderr = process.communicate(timeout=5)
    calls = (state / "calls").read_text(encoding="utf-8").splitlines()
    assert calls == ["1 run", "2 run", "3 run", "4 run", "5 run", "5 terminated"]
    assert process.returncode == 0
    # Exit 2 (configuration) is worth a line; 1 and 3 are normal outcomes.
    assert stderr.count("billsync run exited") == 1 and "exited 2" in stderr


# --- the operating docs' command lines ----------------------------------------------


def _billsync_command_lines(markdown: str) -> Iterator[list[str]]:
    """The argv after each `billsync` word in the document's shell code blocks, and of
    each inline code span that is a billsync command line."""
    for span in re.findall(r"(?<!`)`(billsync [^`\n]+)`(?!`)", markdown):
        yield shlex.split(span)[1:]
    for block in re.findall(r"^```(?:sh|console|cron)\n(.*?)^```", markdown, re.M | re.S):
        for line in block.replace("\\\n", " ").splitlines():
            if line.lstrip().startswith("#") or "billsync" not in line:
                continue
            words = shlex.split(line, comments=True)
            for i, word in enumerate(words):
                follows = words[i + 1] if i + 1 < len(words) else ""
                if word == "billsync" and (follows[:1].isalpha() or follows.startswith("--")):
                    argv = []
                    for arg in words[i + 1 :]:
                        if arg in {"|", "||", "&&", ";", ">", ">>", "2>&1"} or arg[:1] in "<>":
                            break
                        argv.append(arg)
                    yield argv


def _cli_problem(argv: list[str]) -> str | None:
    """Why ``billsync <argv>`` names no real command or option, or None."""
    import typer

    from billsync.sync.cli.app import app

    # typer ships its own copy of click, so groups are recognised by their `commands`.
    command: Any = typer.main.get_command(app)
    words = list(argv)
    while words:
        word = words.pop(0)
        if word == "--help":  # every command has it (click adds it outside params)
            continue
        if word.startswith("-"):
            name, has_value = word.split("=", 1)[0], "=" in word
            param = next((p for p in command.params if name in p.opts + p.secondary_opts), None)
            if param is None:
                return f"{' '.join(argv)}: {command.name} has no option {name}"
            if not getattr(param, "is_flag", False) and not has_value and words:
                words.pop(0)  # the option's value
            continue
        if getattr(command, "commands", None) is not None:
            # get_command, not the commands dict: `billsync auth` finds the connectors'
            # commands only when asked (their plug-ins load lazily).
            found = command.get_command(command.context_class(command), word)
            if found is None:
                return f"{' '.join(argv)}: no command {word!r}"
            command = found
    return None


def test_the_command_line_check_catches_unknown_commands_and_options() -> None:
    assert _cli_problem(["serve", "--port", "8080", "--schedule", "*/15 * * * *"]) is None
    assert _cli_problem(["--log-format", "console", "run"]) is None
    assert _cli_problem(["serve", "--no-such-option"]) is not None
    assert _cli_problem(["no-such-command"]) is not None


def test_every_billsync_command_in_the_operating_docs_exists() -> None:
    problems, seen = [], 0
    for source, text in _operating_docs().items():
        for argv in _billsync_command_lines(text):
            seen += 1
            why = _cli_problem(argv)
            if why:
                problems.append(f"{source}: billsync {why}")
    assert seen >= 10, "the command-line scan found too few commands to be working"
    assert not problems, "\n".join(problems)


def test_the_operating_docs_list_the_stripe_events_billsync_reads() -> None:
    from billsync.connectors.stripe.events import EVENT_TYPES

    section = _operating_docs()["README.md#operating-billsync"]
    events_part = section[section.index("Enable the events") : section.index("Put the endpoint")]
    listed = set(re.findall(r"`([a-z_]+(?:\.[a-z_]+)+)`", events_part))
    assert listed == set(EVENT_TYPES)


def test_every_metric_the_operating_docs_name_is_exported() -> None:
    source = (REPO_ROOT / "sync" / "server" / "metrics.py").read_text(encoding="utf-8")
    section = _operating_docs()["README.md#operating-billsync"]
    names = set(re.findall(r"\bbillsync_[a-z_]+", section))
    assert len(names) >= 8
    for name in names:
        # prometheus_client adds _total to counters; the source names them without it.
        assert f'"{name}"' in source or f'"{name.removesuffix("_total")}"' in source, name
