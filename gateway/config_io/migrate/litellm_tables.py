"""LiteLLM's provider prefixes and their defaults, as the LiteLLM importer maps them."""

from __future__ import annotations

# LiteLLM provider prefix -> our type; the OpenAI-compatible hosted APIs get their base URL.
PREFIX_TYPES = {
    "openai": "openai",
    "azure": "azure_openai",
    "anthropic": "anthropic",
    "gemini": "gemini",
    "bedrock": "bedrock",
    "vertex_ai": "vertex_ai",
    "ollama": "ollama",
    "ollama_chat": "ollama",
    "hosted_vllm": "openai_compatible",
    "openai_like": "openai_compatible",
    "lm_studio": "openai_compatible",
}
COMPATIBLE_BASES = {
    "groq": "https://api.groq.com/openai/v1",
    "deepseek": "https://api.deepseek.com/v1",
    "mistral": "https://api.mistral.ai/v1",
    "together_ai": "https://api.together.xyz/v1",
    "openrouter": "https://openrouter.ai/api/v1",
    "fireworks_ai": "https://api.fireworks.ai/inference/v1",
    "xai": "https://api.x.ai/v1",
    "perplexity": "https://api.perplexity.ai",
    "deepinfra": "https://api.deepinfra.com/v1/openai",
}
# Where LiteLLM reads a deployment's key (and Azure's endpoint) when the entry gives none.
DEFAULT_ENV = {
    "openai": {"api_key": "OPENAI_API_KEY"},
    "azure": {
        "api_key": "AZURE_API_KEY",
        "api_base": "AZURE_API_BASE",
        "api_version": "AZURE_API_VERSION",
    },
    "anthropic": {"api_key": "ANTHROPIC_API_KEY"},
    "groq": {"api_key": "GROQ_API_KEY"},
    "deepseek": {"api_key": "DEEPSEEK_API_KEY"},
    "mistral": {"api_key": "MISTRAL_API_KEY"},
    "together_ai": {"api_key": "TOGETHERAI_API_KEY"},
    "openrouter": {"api_key": "OPENROUTER_API_KEY"},
    "fireworks_ai": {"api_key": "FIREWORKS_AI_API_KEY"},
    "xai": {"api_key": "XAI_API_KEY"},
    "perplexity": {"api_key": "PERPLEXITYAI_API_KEY"},
    "deepinfra": {"api_key": "DEEPINFRA_API_KEY"},
    "cerebras": {"api_key": "CEREBRAS_API_KEY"},
    "gemini": {"api_key": "GEMINI_API_KEY"},
    "vertex_ai": {"api_key": "VERTEX_SERVICE_ACCOUNT_JSON"},
}
# LiteLLM prefixes of the clouds with a preset: imported as ``preset`` (the base URL comes
# with it, so an api_base equal to the preset's is left out).
PREFIX_PRESETS = {
    "groq": "groq",
    "mistral": "mistral",
    "deepseek": "deepseek",
    "together_ai": "together",
    "fireworks_ai": "fireworks",
    "openrouter": "openrouter",
    "xai": "xai",
    "perplexity": "perplexity",
    "cerebras": "cerebras",
    "hosted_vllm": "vllm",
    "lm_studio": "lm_studio",
}
