"""LiteLLM's ``bedrock/`` deployments: AWS credentials and region as a ``bedrock`` instance.

LiteLLM reads ``aws_access_key_id``, ``aws_secret_access_key``, ``aws_session_token`` and
``aws_region_name`` per deployment (else the ``AWS_*`` environment variables); this gateway
keeps the region on the instance and the credentials on its key.
"""

from __future__ import annotations

from typing import Any

from providers.aws import credentials_compose, credentials_split

#: litellm_params a bedrock deployment may carry besides the common ones.
PARAM_KEYS = {"aws_access_key_id", "aws_secret_access_key", "aws_session_token", "aws_region_name"}
_ENV = {
    "aws_access_key_id": "AWS_ACCESS_KEY_ID",
    "aws_secret_access_key": "AWS_SECRET_ACCESS_KEY",
    "aws_region_name": "AWS_REGION_NAME",
}


def bedrock_params(params: dict[str, Any], where: str, notes: list[str]) -> tuple[str, str]:
    """(composed credentials, region) of one deployment, LiteLLM's env defaults filled in."""
    values: dict[str, str] = {}
    for name in (*_ENV, "aws_session_token"):
        value = str(params.get(name) or "")
        if not value and name in _ENV:
            value = "${" + _ENV[name] + "}"
            notes.append(f"{where}: no {name}; LiteLLM's default {value} is used")
        values[name] = value
    creds = credentials_compose(
        values["aws_access_key_id"], values["aws_secret_access_key"], values["aws_session_token"]
    )
    return creds, values["aws_region_name"]


def bedrock_model(model: str) -> str:
    """LiteLLM's route markers (``converse/``, ``invoke/``) are not part of the model id."""
    for marker in ("converse/", "invoke/"):
        model = model.removeprefix(marker)
    return model


def bedrock_key(api_key: str) -> dict[str, Any]:
    """The config file's key entry for composed credentials."""
    creds = credentials_split(api_key)
    if creds is None:
        return {"name": "default", "api_key": api_key, "primary": True}
    key: dict[str, Any] = {
        "name": "default",
        "access_key_id": creds.access_key_id,
        "secret_access_key": creds.secret_access_key,
    }
    if creds.session_token:
        key["session_token"] = creds.session_token
    key["primary"] = True
    return key
