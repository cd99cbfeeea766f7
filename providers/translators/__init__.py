"""Wire-format translators, named ``<client>_<backend>``: ``openai_anthropic`` turns what an
OpenAI-format client sent into what an Anthropic backend takes (and its answers back);
``anthropic_openai`` the reverse. Pure functions and stream state machines: no I/O, a test
beside each."""
