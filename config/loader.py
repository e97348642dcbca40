"""Load `Settings` from a YAML file, secret files and the environment, or explain why not.

Sources, strongest first:
1. environment variables `BILLSYNC_<SECTION>__<KEY>` (lists as JSON, e.g. `'["a","b"]'`);
2. secret files: `BILLSYNC_<SECTION>__<KEY>_FILE=/run/secrets/x` in the environment, or
   `<key>_file: /run/secrets/x` in the YAML, for secret keys only (Docker/Kubernetes);
3. the YAML file from `--config FILE` or `BILLSYNC_CONFIG`.

Every problem becomes one line `SOURCE: section.key: reason` where SOURCE is the file or
the environment variable that supplied the value. Messages never include a value, and
`ConfigError` is raised `from None` so no traceback carries one either.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, get_origin

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_settings import BaseSettings, EnvSettingsSource, PydanticBaseSettingsSource

from billsync.config.settings import (
    CONNECTIONS,
    ENV_NESTED_DELIMITER,
    ENV_PREFIX,
    Settings,
    connection_models,
    sections_of,
    with_connectors,
)
from billsync.core.plugins import ENTRY_POINT_GROUP, ConnectorSpec, installed_specs
from billsync.core.problems import ConfigError, ConfigProblem
from billsync.core.settings import secret_field_names
from billsync.core.yamlio import YamlLimitError, load_yaml, read_yaml_text

CONFIG_ENV = "BILLSYNC_CONFIG"
SECRET_FILE_SUFFIX = "_file"  # noqa: S105 - a key suffix, not a secret
ENVIRONMENT = "environment"


def load_settings(
    config_file: Path | str | None = None,
    environ: Mapping[str, str] | None = None,
    *,
    connectors: Mapping[str, ConnectorSpec] | None = None,
) -> Settings:
    """Build validated settings or raise `ConfigError` listing every problem found.

    ``connectors``: the connectors whose sections the configuration has (default:
    every installed one, `billsync.core.plugins.installed_specs`)."""
    env = dict(os.environ if environ is None else environ)
    path = Path(config_file) if config_file else _path_from_env(env)
    file_label = str(path) if path else ENVIRONMENT

    problems: list[ConfigProblem] = []
    data = _read_yaml(path, problems) if path else {}
    if connectors is None:
        specs, broken = installed_specs()
        # A broken plug-in matters only when its section is used.
        problems += [
            ConfigProblem(ENTRY_POINT_GROUP, name, reason)
            for name, reason in broken.items()
            if name in data
        ]
    else:
        specs = dict(connectors)
    base = with_connectors(specs)
    sections = sections_of(base)
    _resolve_yaml_secret_files(data, file_label, problems, sections)
    _resolve_connection_secret_files(data, file_label, problems, connection_models(base))
    _overlay_env_secret_files(data, env, problems, sections)
    _overlay_env_connection_secret_files(data, env, problems, connection_models(base))
    if problems:
        raise ConfigError(problems)

    settings_cls = _bound_to_environment(env, base, sections)
    try:
        return settings_cls(**data)
    except ValidationError as exc:
        found = _explain(exc, file_label, env, base)
        # In the order the file has its sections (connectors' sections come last in
        # the model, which is the order validation reports them in).
        order = {name: i for i, name in enumerate(data)}
        problems.extend(sorted(found, key=lambda p: order.get(p.key.split(".")[0], len(order))))
    raise ConfigError(problems) from None


def _path_from_env(env: Mapping[str, str]) -> Path | None:
    value = env.get(CONFIG_ENV)
    return Path(value) if value else None


def _read_yaml(path: Path, problems: list[ConfigProblem]) -> dict[str, Any]:
    try:
        text = read_yaml_text(path)
    except OSError as exc:
        problems.append(ConfigProblem(str(path), "-", f"cannot read the file: {exc.strerror}"))
        return {}
    except (YamlLimitError, UnicodeDecodeError) as exc:
        problems.append(ConfigProblem(str(path), "-", f"refused: {_why(exc)}"))
        return {}
    try:
        loaded = load_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "-"
        problem = getattr(exc, "problem", None) or "not valid YAML"
        problems.append(ConfigProblem(str(path), where, f"{_kind(exc)}: {problem}"))
        return {}
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        problems.append(
            ConfigProblem(str(path), "-", "the top level must be a mapping of sections")
        )
        return {}
    return loaded


def _kind(exc: Exception) -> str:
    return "refused" if isinstance(exc, YamlLimitError) else "invalid YAML"


def _why(exc: Exception) -> str:
    return exc.problem if isinstance(exc, YamlLimitError) else "not UTF-8 text"


def _resolve_yaml_secret_files(
    data: dict[str, Any],
    file_label: str,
    problems: list[ConfigProblem],
    sections: Mapping[str, type[BaseModel]],
) -> None:
    """Replace `<secret>_file: PATH` keys in the YAML by the secret read from PATH."""
    for section_name, section in data.items():
        model = sections.get(section_name)
        if model is None or not isinstance(section, dict):
            continue  # reported by validation as an unknown section or a wrong type
        _read_section_secret_files(section, model, section_name, file_label, problems)


def _resolve_connection_secret_files(
    data: dict[str, Any],
    file_label: str,
    problems: list[ConfigProblem],
    models: Mapping[str, type[BaseModel]],
) -> None:
    """The same for each ``connections:`` entry, by the model of its ``kind``."""
    entries = data.get(CONNECTIONS)
    if not isinstance(entries, dict):
        return
    for name, entry in entries.items():
        model = models.get(str(entry.get("kind"))) if isinstance(entry, dict) else None
        if model is not None and isinstance(entry, dict):
            where = f"{CONNECTIONS}.{name}"
            _read_section_secret_files(entry, model, where, file_label, problems)


def _read_section_secret_files(
    section: dict[str, Any],
    model: type[BaseModel],
    where: str,
    file_label: str,
    problems: list[ConfigProblem],
) -> None:
    secrets = _file_keys(model)
    for key in [k for k in section if k.endswith(SECRET_FILE_SUFFIX)]:
        base = key.removesuffix(SECRET_FILE_SUFFIX)
        if base not in secrets:
            continue
        secret = _read_secret_file(section.pop(key), file_label, f"{where}.{key}", problems)
        if secret is not None:
            section[base] = _as_field_value(model, base, secret)


def _overlay_env_secret_files(
    data: dict[str, Any],
    env: Mapping[str, str],
    problems: list[ConfigProblem],
    sections: Mapping[str, type[BaseModel]],
) -> None:
    """Apply `BILLSYNC_<SECTION>__<KEY>_FILE` variables over the YAML values."""
    for name, section, key in _env_secret_file_vars(env, sections):
        secret = _read_secret_file(env[name], name, f"{section}.{key}", problems)
        if secret is not None:
            data.setdefault(section, {})
            if isinstance(data[section], dict):
                data[section][key] = _as_field_value(sections[section], key, secret)


def _overlay_env_connection_secret_files(
    data: dict[str, Any],
    env: Mapping[str, str],
    problems: list[ConfigProblem],
    models: Mapping[str, type[BaseModel]],
) -> None:
    """Apply `BILLSYNC_CONNECTIONS__<NAME>__<KEY>_FILE` variables over the YAML values
    of a connection the file declares (its ``kind`` says which keys are secrets)."""
    entries = data.get(CONNECTIONS)
    if not isinstance(entries, dict):
        return
    for name, connection, key in _env_connection_secret_file_vars(env):
        entry = entries.get(connection)
        if not isinstance(entry, dict):
            continue
        model = models.get(str(entry.get("kind")))
        if model is None or key not in _file_keys(model):
            continue
        secret = _read_secret_file(env[name], name, f"{CONNECTIONS}.{connection}.{key}", problems)
        if secret is not None:
            entry[key] = _as_field_value(model, key, secret)


def _env_connection_secret_file_vars(env: Mapping[str, str]) -> list[tuple[str, str, str]]:
    found = []
    for name in env:
        upper = name.upper()
        if not upper.startswith(ENV_PREFIX) or not upper.endswith(SECRET_FILE_SUFFIX.upper()):
            continue
        parts = upper[len(ENV_PREFIX) :].lower().split(ENV_NESTED_DELIMITER)
        if len(parts) == 3 and parts[0] == CONNECTIONS:
            found.append((name, parts[1], parts[2].removesuffix(SECRET_FILE_SUFFIX)))
    return found


def _as_field_value(model: type[BaseModel], key: str, secret: str) -> str | list[str]:
    """A list secret (e.g. a list of webhook secrets during a rotation) holds one value
    per line of its file; blank lines are ignored."""
    annotation = model.model_fields[key].annotation
    if get_origin(annotation) is list:
        return [line.strip() for line in secret.splitlines() if line.strip()]
    return secret


def _env_secret_file_vars(
    env: Mapping[str, str], sections: Mapping[str, type[BaseModel]]
) -> list[tuple[str, str, str]]:
    found = []
    for name in env:
        upper = name.upper()
        if not upper.startswith(ENV_PREFIX) or not upper.endswith(SECRET_FILE_SUFFIX.upper()):
            continue
        parts = upper[len(ENV_PREFIX) :].lower().split(ENV_NESTED_DELIMITER)
        if len(parts) != 2:
            continue
        section, key = parts[0], parts[1].removesuffix(SECRET_FILE_SUFFIX)
        model = sections.get(section)
        if model is not None and key in _file_keys(model):
            found.append((name, section, key))
    return found


def _file_keys(model: type[BaseModel]) -> set[str]:
    """Keys that may come from a secret file: the secrets, and the secret-bearing values
    (ledger.url, whose password is in it)."""
    bearing = {
        name
        for name, field in model.model_fields.items()
        if isinstance(field.json_schema_extra, dict)
        and field.json_schema_extra.get("secret_bearing")
    }
    return secret_field_names(model) | bearing


def _read_secret_file(
    raw_path: Any, source: str, key: str, problems: list[ConfigProblem]
) -> str | None:
    if not isinstance(raw_path, str) or not raw_path:
        problems.append(ConfigProblem(source, key, "must be the path of a secret file"))
        return None
    try:
        # Secret files from Docker/Kubernetes usually end with a newline that is not
        # part of the secret.
        return Path(raw_path).read_text(encoding="utf-8").rstrip("\r\n")
    except OSError as exc:
        problems.append(
            ConfigProblem(source, key, f"cannot read secret file {raw_path}: {exc.strerror}")
        )
        return None


def _bound_to_environment(
    env: Mapping[str, str], base: type[Settings], sections: Mapping[str, type[BaseModel]]
) -> type[Settings]:
    """A `Settings` subclass whose environment source reads `env`, minus secret-file vars.

    pydantic-settings reads `os.environ` itself; binding the mapping here keeps the
    loader testable and stops `X_FILE` variables from looking like unknown keys.
    """
    handled = {name for name, _, _ in _env_secret_file_vars(env, sections)}
    handled |= {name for name, _, _ in _env_connection_secret_file_vars(env)}
    visible = {k: v for k, v in env.items() if k not in handled}

    class _MappingEnvSource(EnvSettingsSource):
        def _load_env_vars(self) -> Mapping[str, str | None]:
            return {k.lower(): v for k, v in visible.items()}

    class BoundSettings(base):  # type: ignore[valid-type,misc]
        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            return (_MappingEnvSource(settings_cls), init_settings)

    return BoundSettings


def _explain(
    exc: ValidationError, file_label: str, env: Mapping[str, str], settings_cls: type[Settings]
) -> list[ConfigProblem]:
    problems = []
    for error in exc.errors(include_input=False, include_url=False):
        loc = _without_kind_tag([str(part) for part in error["loc"]], settings_cls)
        if error["type"] == "missing_secret":
            loc.append(str((error.get("ctx") or {})["key"]))
            reason = _missing_secret_reason(loc)
        elif error["type"] == "extra_forbidden":
            reason = _unknown_key_reason(loc, settings_cls)
        elif error["type"] in ("union_tag_invalid", "union_tag_not_found"):
            kinds = ", ".join(sorted(settings_cls.connector_specs))
            reason = f"kind must name an installed connector ({kinds})"
            loc.append("kind")
        else:
            reason = error["msg"]
        problems.append(ConfigProblem(_source_of(loc, file_label, env), ".".join(loc), reason))
    return problems


def _without_kind_tag(loc: list[str], settings_cls: type[Settings]) -> list[str]:
    """pydantic puts the ``kind`` of a ``connections:`` entry into the error's location
    (``connections.<name>.<kind>.<key>``); the operator's key has no such part."""
    if loc[:1] != [CONNECTIONS]:
        return loc
    if len(loc) > 2 and loc[2] in settings_cls.connector_specs:
        return loc[:2] + loc[3:]
    return [part for part in loc if part != "[key]"]  # a refused connection name


def _env_name(loc: list[str]) -> str:
    depth = 3 if loc and loc[0] == CONNECTIONS else 2
    return ENV_PREFIX + ENV_NESTED_DELIMITER.join(part.upper() for part in loc[:depth])


def _source_of(loc: list[str], file_label: str, env: Mapping[str, str]) -> str:
    name = _env_name(loc)
    upper_env = {k.upper() for k in env}
    return name if name in upper_env else file_label


def _missing_secret_reason(loc: list[str]) -> str:
    name = _env_name(loc)
    return (
        f"required secret is missing: set {'.'.join(loc)} in the config file, "
        f"or {name}, or {name}_FILE pointing at a secret file"
    )


def _unknown_key_reason(loc: list[str], settings_cls: type[Settings]) -> str:
    known = _known_keys(loc[:-1], settings_cls)
    close = difflib.get_close_matches(loc[-1], known, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return f"unknown key{hint}"


def _known_keys(parent: list[str], settings_cls: type[Settings]) -> list[str]:
    model: type[BaseModel] = settings_cls
    for part in parent:
        annotation = model.model_fields[part].annotation if part in model.model_fields else None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        model = annotation
    return list(model.model_fields)
