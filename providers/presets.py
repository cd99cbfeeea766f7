"""Presets for OpenAI-compatible clouds: data about a known endpoint, not a new adapter.

An ``openai_compatible`` instance may name a preset. The preset supplies the default base
URL, the auth header, the request fields that cloud refuses (dropped by the adapter instead of
failing the call with the upstream's 400/422), fields it knows under another name, and where
its model list lives (the health probe). Everything else is OpenAI's wire format unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import models

from providers.types import KEYLESS_TYPES, ProviderType


class PresetName(models.TextChoices):
    """The known OpenAI-compatible clouds and local servers."""

    GROQ = "groq", "Groq"
    MISTRAL = "mistral", "Mistral"
    DEEPSEEK = "deepseek", "DeepSeek"
    TOGETHER = "together", "Together AI"
    FIREWORKS = "fireworks", "Fireworks AI"
    OPENROUTER = "openrouter", "OpenRouter"
    XAI = "xai", "xAI"
    PERPLEXITY = "perplexity", "Perplexity"
    CEREBRAS = "cerebras", "Cerebras"
    VLLM = "vllm", "vLLM (self-hosted)"
    LM_STUDIO = "lm_studio", "LM Studio (local)"


@dataclass(frozen=True, slots=True)
class Preset:
    """What differs between one OpenAI-compatible endpoint and OpenAI itself."""

    name: str
    base_url: str
    #: Header carrying the key and the prefix before the key ("Bearer " or "").
    auth_header: str = "authorization"
    auth_prefix: str = "Bearer "
    #: Top-level chat request fields the endpoint refuses: removed before sending.
    refuses: frozenset[str] = frozenset()
    #: Fields the endpoint knows under another name (OpenAI name -> its name).
    renames: tuple[tuple[str, str], ...] = ()
    #: Model list under the base URL; "" when there is none (probe with a completion).
    models_path: str = "models"
    #: Whether the endpoint can be called without a key (local servers).
    keyless: bool = False

    def fields_for_request(self, body: dict[str, object]) -> tuple[dict[str, object], list[str]]:
        """``body`` without the refused fields and with renamed ones; also the names dropped."""
        out = dict(body)
        for src, dst in self.renames:
            if src in out and dst not in out:
                out[dst] = out.pop(src)
        dropped = sorted(name for name in self.refuses if name in out)
        for name in dropped:
            del out[name]
        return out, dropped


# OpenAI-only request fields no third-party cloud serves (OpenAI's storage, billing tiers and
# predicted outputs). Several clouds answer 400/422 to an unknown field rather than ignore it.
_OPENAI_ONLY = frozenset({"store", "metadata", "service_tier", "prediction", "modalities", "audio"})

PRESETS: dict[str, Preset] = {
    PresetName.GROQ: Preset(
        name=PresetName.GROQ,
        base_url="https://api.groq.com/openai/v1",
        # Groq documents these as unsupported (400 when present).
        refuses=_OPENAI_ONLY | {"logprobs", "logit_bias", "top_logprobs"},
    ),
    PresetName.MISTRAL: Preset(
        name=PresetName.MISTRAL,
        base_url="https://api.mistral.ai/v1",
        # Mistral validates strictly (422 "extra inputs are not permitted").
        refuses=_OPENAI_ONLY
        | {
            "stream_options",
            "logit_bias",
            "logprobs",
            "top_logprobs",
            "user",
            "function_call",
            "functions",
            "reasoning_effort",
        },
        renames=(("max_completion_tokens", "max_tokens"), ("seed", "random_seed")),
    ),
    PresetName.DEEPSEEK: Preset(
        name=PresetName.DEEPSEEK,
        base_url="https://api.deepseek.com/v1",
        refuses=_OPENAI_ONLY | {"parallel_tool_calls", "reasoning_effort"},
        renames=(("max_completion_tokens", "max_tokens"),),
    ),
    PresetName.TOGETHER: Preset(
        name=PresetName.TOGETHER,
        base_url="https://api.together.xyz/v1",
        refuses=_OPENAI_ONLY,
    ),
    PresetName.FIREWORKS: Preset(
        name=PresetName.FIREWORKS,
        base_url="https://api.fireworks.ai/inference/v1",
        refuses=_OPENAI_ONLY | {"parallel_tool_calls"},
    ),
    PresetName.OPENROUTER: Preset(
        name=PresetName.OPENROUTER,
        base_url="https://openrouter.ai/api/v1",
        # OpenRouter forwards OpenAI's fields and ignores what a routed model cannot use.
    ),
    PresetName.XAI: Preset(
        name=PresetName.XAI,
        base_url="https://api.x.ai/v1",
        refuses=_OPENAI_ONLY - {"store", "metadata"},
    ),
    PresetName.PERPLEXITY: Preset(
        name=PresetName.PERPLEXITY,
        base_url="https://api.perplexity.ai",
        refuses=_OPENAI_ONLY
        | {
            "stream_options",
            "tools",
            "tool_choice",
            "parallel_tool_calls",
            "logit_bias",
            "logprobs",
            "top_logprobs",
            "n",
            "user",
            "seed",
        },
        renames=(("max_completion_tokens", "max_tokens"),),
        models_path="",
    ),
    PresetName.CEREBRAS: Preset(
        name=PresetName.CEREBRAS,
        base_url="https://api.cerebras.ai/v1",
        # Cerebras documents these as unsupported (400 when present).
        refuses=_OPENAI_ONLY
        | {"frequency_penalty", "presence_penalty", "logit_bias", "parallel_tool_calls"},
    ),
    PresetName.VLLM: Preset(
        name=PresetName.VLLM,
        base_url="http://localhost:8000/v1",
        keyless=True,
    ),
    PresetName.LM_STUDIO: Preset(
        name=PresetName.LM_STUDIO,
        base_url="http://localhost:1234/v1",
        refuses=_OPENAI_ONLY | {"parallel_tool_calls"},
        keyless=True,
    ),
}


def preset_get(name: str) -> Preset | None:
    """The preset called ``name``; None for "" or an unknown name."""
    return PRESETS.get(name) if name else None


def preset_models_probe_ok(name: str, probe: str) -> bool:
    """False when a preset without a model list is set to the ``models`` health probe."""
    preset = preset_get(name)
    return preset is None or bool(preset.models_path) or probe != "models"


def keyless(provider_type: str, preset: str) -> bool:
    """Whether an instance of ``provider_type`` with ``preset`` can be called without a key."""
    if provider_type in KEYLESS_TYPES:
        return True
    found = preset_get(preset) if provider_type == ProviderType.OPENAI_COMPATIBLE else None
    return found is not None and found.keyless
