"""AWS credentials of a Bedrock key and SigV4 signing with botocore's signer.

A Bedrock key credential keeps its three parts in the (encrypted) ``api_key`` as
``ACCESS_KEY_ID:SECRET_ACCESS_KEY[:SESSION_TOKEN]``: none of AWS's alphabets has a colon, so
the split is unambiguous, and the existing encryption, masking, ``${VAR}`` substitution and key
failover apply unchanged. The config file and the admin API take the three named fields and
compose/split this form (``credentials_compose``/``credentials_split``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from providers.envsubst import has_reference
from providers.transport import url_as_sent

SERVICE = "bedrock"
#: The config file's names of a Bedrock key's parts, in stored order.
AWS_PARTS = ("access_key_id", "secret_access_key", "session_token")


@dataclass(frozen=True, slots=True)
class AwsCredentials:
    """One key's plaintext credentials: never log or render them."""

    access_key_id: str
    secret_access_key: str = field(repr=False)
    session_token: str = field(default="", repr=False)


def credentials_compose(access_key_id: str, secret_access_key: str, session_token: str = "") -> str:
    """The stored ``api_key`` form of the three parts."""
    parts = [access_key_id.strip(), secret_access_key.strip()]
    if session_token and session_token.strip():
        parts.append(session_token.strip())
    return ":".join(parts)


def credentials_split(value: str) -> AwsCredentials | None:
    """The parts of a stored value, or None when it is not of the composed form."""
    parts = value.split(":")
    if len(parts) not in (2, 3) or not parts[0] or not parts[1]:
        return None
    return AwsCredentials(parts[0], parts[1], parts[2] if len(parts) == 3 else "")


def credentials_problem(value: str) -> str | None:
    """Why ``value`` cannot be a Bedrock credential (message naming what is missing), or None."""
    if credentials_split(value) is None:
        return (
            "a Bedrock key is ACCESS_KEY_ID:SECRET_ACCESS_KEY[:SESSION_TOKEN] "
            "(in the config file: access_key_id, secret_access_key, session_token)"
        )
    return None


def credentials_masked(value: str) -> str:
    """What may be shown: the access key id's last 4 and references, never a literal secret."""
    creds = credentials_split(value)
    if creds is None:
        return "****"

    def show(part: str, *, id_part: bool = False) -> str:
        if has_reference(part):
            return part
        if id_part and len(part) > 8:
            return f"…{part[-4:]}"
        return "****"

    shown = [show(creds.access_key_id, id_part=True), show(creds.secret_access_key)]
    if creds.session_token:
        shown.append(show(creds.session_token))
    return ":".join(shown)


def sigv4_headers(
    *,
    method: str,
    url: str,
    headers: dict[str, str],
    body: bytes,
    credentials: AwsCredentials,
    region: str,
) -> dict[str, str]:
    """``headers`` plus ``Authorization``, ``X-Amz-Date`` (and the session token) for ``url``.

    SigV4 signs the path and query as they go on the wire, so the URL is first normalised as
    the transport sends it (an inference profile id's ``%3A`` leaves as ``:``).
    """
    # botocore is imported on first use: it adds ~18 MB to every worker, and only a gateway
    # with a Bedrock instance needs it.
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    creds = Credentials(
        credentials.access_key_id,
        credentials.secret_access_key,
        credentials.session_token or None,
    )
    request = AWSRequest(method=method, url=url_as_sent(url), data=body, headers=dict(headers))
    SigV4Auth(creds, SERVICE, region).add_auth(request)
    return {str(k): str(v) for k, v in request.headers.items()}
