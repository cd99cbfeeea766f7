"""Bedrock's wire format as the fake upstream speaks it: SigV4 verification, Converse,
ConverseStream in AWS's binary event-stream framing, InvokeModel embeddings, and errors as
``{"message": ...}`` with the ``x-amzn-ErrorType`` header.

The fake knows every key's secret by convention: the secret of access key id ``AKID`` is
:func:`secret_for` (``AKID``); a request signed with any other secret fails as at AWS.
"""

from __future__ import annotations

import json
import struct
import zlib
from typing import Any
from urllib.parse import unquote

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from tests.fakes import wire

EVENTSTREAM = "application/vnd.amazon.eventstream"
ERROR_TYPES = {
    400: "ValidationException",
    403: "AccessDeniedException",
    404: "ResourceNotFoundException",
    429: "ThrottlingException",
    503: "ServiceUnavailableException",
}


def secret_for(access_key_id: str) -> str:
    return f"fake-secret-for-{access_key_id}"


def credentials(access_key_id: str, *, token: str = "") -> str:
    """The gateway's stored form of a key the fake accepts."""
    return ":".join([access_key_id, secret_for(access_key_id), *([token] if token else [])])


def presented_key(headers: dict[str, str]) -> str | None:
    """The access key id of a SigV4 ``Authorization`` header."""
    auth = headers.get("authorization", "")
    if not auth.startswith("AWS4-HMAC-SHA256 "):
        return None
    for part in auth[17:].split(","):
        name, _, value = part.strip().partition("=")
        if name == "Credential":
            return value.split("/", 1)[0]
    return None


def error(status: int, message: str, etype: str | None = None) -> tuple[dict[str, Any], dict]:
    """(body, headers) of a Bedrock error answer."""
    return {"message": message}, {"x-amzn-ErrorType": etype or ERROR_TYPES.get(status, "")}


def signature_problem(
    method: str, raw_path: str, headers: dict[str, str], body: bytes
) -> tuple[int, str, str] | None:
    """Recompute the request's SigV4 signature with the key's secret, as AWS does."""
    auth = headers.get("authorization", "")
    if not auth.startswith("AWS4-HMAC-SHA256 "):
        return 403, "MissingAuthenticationTokenException", "Missing Authentication Token"
    fields = dict(p.strip().split("=", 1) for p in auth[17:].split(","))
    akid, date, region, service, _ = fields["Credential"].split("/")
    signed = fields["SignedHeaders"].split(";")
    amz_date = headers.get("x-amz-date", "")
    if service != "bedrock" or not amz_date.startswith(date):
        return 403, "InvalidSignatureException", "Credential should be scoped to a valid service."
    url = f"http://{headers.get('host', '')}{raw_path}"
    request = AWSRequest(
        method=method,
        url=url,
        data=body,
        headers={h: headers.get(h, "") for h in signed if h != "host"},
    )
    request.context["timestamp"] = amz_date
    token = headers.get("x-amz-security-token")
    signer = SigV4Auth(Credentials(akid, secret_for(akid), token), "bedrock", region)
    canonical = signer.canonical_request(request)
    expected = signer.signature(signer.string_to_sign(request, canonical), request)
    if expected != fields.get("Signature"):
        return (
            403,
            "InvalidSignatureException",
            "The request signature we calculated does not match the signature you provided. "
            "Check your AWS Secret Access Key and signing method.",
        )
    return None


def route(method: str, path: str) -> str | None:
    if method == "GET" and path.endswith("/foundation-models"):
        return "bedrock_models"
    if method == "POST" and "/model/" in path:
        action = path.rsplit("/", 1)[-1]
        return {
            "converse": "bedrock_converse",
            "converse-stream": "bedrock_stream",
            "invoke": "bedrock_invoke",
        }.get(action, "unknown")
    return None


def model_of(raw_path: str) -> str:
    """The model id of ``/model/{id}/...`` (sent URL-encoded)."""
    return unquote(raw_path.split("/model/", 1)[1].rsplit("/", 1)[0])


def request_problem(body: dict[str, Any]) -> str | None:
    """What Converse refuses with a ValidationException."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "A conversation must start with a user message."
    if messages[0].get("role") != "user":
        return "A conversation must start with a user message."
    uses: set[str] = set()
    for i, message in enumerate(messages):
        if message.get("role") not in ("user", "assistant"):
            return f"messages.{i}.role: Member must satisfy enum value set: [user, assistant]"
        if i and messages[i - 1].get("role") == message.get("role"):
            return "A conversation must alternate between user and assistant roles."
        if not message.get("content"):
            return f"messages.{i}.content: Member must have length greater than or equal to 1"
        for block in message["content"]:
            if "toolUse" in block:
                uses.add(block["toolUse"]["toolUseId"])
            if "toolResult" in block and block["toolResult"]["toolUseId"] not in uses:
                return "The toolUse blocks are missing for the toolResult blocks."
            if "image" in block and not isinstance(block["image"]["source"]["bytes"], str):
                return "messages.content.image.source.bytes: must be base64"
    if uses and not body.get("toolConfig"):
        return (
            "The toolConfig field must be defined when using toolUse and toolResult content blocks."
        )
    return None


def decide(body: dict[str, Any]) -> wire.Decision:
    """The fake model's move, read from a Converse body as from the equivalent chat."""
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": s.get("text", "")} for s in body.get("system") or []
    ]
    for message in body.get("messages") or []:
        blocks = message.get("content") or []
        results = [b["toolResult"] for b in blocks if "toolResult" in b]
        if results:
            text = " ".join(c.get("text", "") for c in results[-1].get("content") or [])
            messages.append({"role": "tool", "content": text})
            continue
        text = " ".join(b["text"] for b in blocks if "text" in b)
        messages.append({"role": message["role"], "content": text})
    tools = [
        {"type": "function", "function": {"name": t["toolSpec"]["name"]}}
        for t in (body.get("toolConfig") or {}).get("tools") or []
    ]
    return wire.decide_openai({"messages": messages, "tools": tools})


def _usage(d: wire.Decision) -> dict[str, int]:
    return {
        "inputTokens": d.prompt_tokens,
        "outputTokens": d.completion_tokens,
        "totalTokens": d.prompt_tokens + d.completion_tokens,
    }


def _tool_use(d: wire.Decision) -> dict[str, Any]:
    return {
        "toolUseId": f"tooluse_{d.tool_id}",
        "name": d.tool_name,
        "input": json.loads(d.tool_args),
    }


def converse(d: wire.Decision, *, guardrail: bool = False) -> dict[str, Any]:
    if guardrail:
        content = [{"text": "Sorry, the model cannot answer this question."}]
        stop = "guardrail_intervened"
    elif d.is_tool_call:
        content, stop = [{"toolUse": _tool_use(d)}], "tool_use"
    else:
        content, stop = [{"text": d.text}], "end_turn"
    return {
        "output": {"message": {"role": "assistant", "content": content}},
        "stopReason": stop,
        "usage": _usage(d),
        "metrics": {"latencyMs": 12},
    }


def stream_events(d: wire.Decision) -> list[tuple[str, dict[str, Any]]]:
    """ConverseStream's event sequence: text in word pieces, tool input in two JSON halves."""
    events: list[tuple[str, dict[str, Any]]] = [("messageStart", {"role": "assistant"})]
    if d.is_tool_call:
        use = _tool_use(d)
        start = {"toolUse": {"toolUseId": use["toolUseId"], "name": use["name"]}}
        events.append(("contentBlockStart", {"start": start, "contentBlockIndex": 0}))
        half = len(d.tool_args) // 2
        for piece in (d.tool_args[:half], d.tool_args[half:]):
            delta = {"delta": {"toolUse": {"input": piece}}, "contentBlockIndex": 0}
            events.append(("contentBlockDelta", delta))
        stop = "tool_use"
    else:
        words = d.text.split(" ")
        for i, word in enumerate(words):
            text = word + (" " if i < len(words) - 1 else "")
            events.append(("contentBlockDelta", {"delta": {"text": text}, "contentBlockIndex": 0}))
        stop = "end_turn"
    events.append(("contentBlockStop", {"contentBlockIndex": 0}))
    events.append(("messageStop", {"stopReason": stop}))
    events.append(("metadata", {"usage": _usage(d), "metrics": {"latencyMs": 12}}))
    return events


def _header(name: str, value: str) -> bytes:
    raw = value.encode()
    return bytes([len(name)]) + name.encode() + b"\x07" + struct.pack(">H", len(raw)) + raw


def frame(headers: dict[str, str], payload: bytes) -> bytes:
    """One event-stream message: prelude (lengths + CRC), headers, payload, message CRC."""
    head = b"".join(_header(k, v) for k, v in headers.items())
    total = 12 + len(head) + len(payload) + 4
    prelude = struct.pack(">II", total, len(head))
    prelude += struct.pack(">I", zlib.crc32(prelude))
    body = prelude + head + payload
    return body + struct.pack(">I", zlib.crc32(body))


def event_frame(name: str, payload: dict[str, Any]) -> bytes:
    headers = {":event-type": name, ":content-type": "application/json", ":message-type": "event"}
    return frame(headers, json.dumps(payload).encode())


def exception_frame(etype: str, message: str) -> bytes:
    headers = {
        ":exception-type": etype,
        ":content-type": "application/json",
        ":message-type": "exception",
    }
    return frame(headers, json.dumps({"message": message}).encode())


def embeddings(model: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """InvokeModel for Titan (one ``inputText``) and Cohere (``texts``) embedding models."""
    if "titan-embed" in model:
        if not isinstance(body.get("inputText"), str) or set(body) - {
            "inputText",
            "dimensions",
            "normalize",
        }:
            return 400, {
                "message": "Malformed input request: #: extraneous key or missing inputText"
            }
        payload, tokens = wire.embeddings(
            {"input": [body["inputText"]], "dimensions": body.get("dimensions")}, ""
        )
        return 200, {"embedding": payload["data"][0]["embedding"], "inputTextTokenCount": tokens}
    if "cohere.embed" in model:
        if not isinstance(body.get("texts"), list) or not body.get("input_type"):
            return 400, {"message": "Malformed input request: texts and input_type are required"}
        payload, _ = wire.embeddings({"input": body["texts"]}, "")
        return 200, {
            "embeddings": [row["embedding"] for row in payload["data"]],
            "id": "emb-1",
            "response_type": "embeddings_floats",
            "texts": body["texts"],
        }
    return 400, {"message": "The provided model doesn't support on-demand throughput."}


def foundation_models() -> dict[str, Any]:
    return {
        "modelSummaries": [
            {"modelId": "anthropic.claude-3-5-sonnet-20240620-v1:0", "providerName": "Anthropic"},
            {"modelId": "amazon.titan-embed-text-v2:0", "providerName": "Amazon"},
        ]
    }
