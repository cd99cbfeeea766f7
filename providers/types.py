"""Provider types: the closed set of wire formats the gateway speaks, and their defaults."""

from __future__ import annotations

from django.db import models


class ProviderType(models.TextChoices):
    """A provider *type* names a wire format; a Provider row is one *instance* of a type."""

    OPENAI = "openai", "OpenAI"
    AZURE_OPENAI = "azure_openai", "Azure OpenAI"
    ANTHROPIC = "anthropic", "Anthropic"
    OLLAMA = "ollama", "Ollama"
    OPENAI_COMPATIBLE = "openai_compatible", "OpenAI-compatible"
    GEMINI = "gemini", "Google Gemini (AI Studio)"
    BEDROCK = "bedrock", "AWS Bedrock"
    VERTEX_AI = "vertex_ai", "Google Vertex AI"
    MOCK = "mock", "Mock (in process)"


# Base URL used when an instance leaves base_url empty. Types missing here require one.
DEFAULT_BASE_URLS: dict[str, str] = {
    ProviderType.OPENAI: "https://api.openai.com/v1",
    ProviderType.ANTHROPIC: "https://api.anthropic.com/v1",
    ProviderType.OLLAMA: "http://localhost:11434/v1",
    ProviderType.GEMINI: "https://generativelanguage.googleapis.com/v1beta",
    ProviderType.MOCK: "",
}

# Bedrock's default endpoint depends on the instance's region (``Provider.effective_base_url``).
BEDROCK_BASE_URL = "https://bedrock-runtime.{region}.amazonaws.com"

# Types whose upstream needs no API key at all.
KEYLESS_TYPES = frozenset({ProviderType.OLLAMA, ProviderType.MOCK})

# Types that speak OpenAI's chat completions format upstream (used by translation code).
OPENAI_WIRE_TYPES = frozenset(
    {
        ProviderType.OPENAI,
        ProviderType.AZURE_OPENAI,
        ProviderType.OLLAMA,
        ProviderType.OPENAI_COMPATIBLE,
        ProviderType.MOCK,
    }
)


def vertex_base_url(project: str, location: str) -> str:
    """Vertex AI's regional endpoint for ``project`` in ``location`` (``global`` has no
    regional host)."""
    host = "aiplatform.googleapis.com"
    if location != "global":
        host = f"{location}-{host}"
    return f"https://{host}/v1/projects/{project}/locations/{location}"
