"""rebuilt: reproducible source builds and benchmarks of an LLM-serving stack."""

__version__ = "0.1.0"
