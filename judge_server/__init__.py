"""judge-server: an LLM-as-judge reward server on vLLM."""

__version__ = "0.1.0"
