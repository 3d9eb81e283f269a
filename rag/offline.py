"""Offline switches for the libraries that would otherwise reach the network.

huggingface_hub and transformers read their switches from the environment when they are
first imported, and Chroma's telemetry flag is read by its client; so the switches must be
in the process environment before those imports. This writes the environment (it never
reads configuration from it: that is rag.settings' job), and only fills in unset values,
so an operator can still override a switch explicitly.
"""

import os

OFFLINE_SWITCHES: dict[str, str] = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "HF_HUB_DISABLE_IMPLICIT_TOKEN": "1",
    "DO_NOT_TRACK": "1",
    "ANONYMIZED_TELEMETRY": "False",
    "TOKENIZERS_PARALLELISM": "false",
    # Not network switches: keep model-loading progress bars out of CLI and JSON output.
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "TRANSFORMERS_VERBOSITY": "error",
}


def enforce_offline() -> None:
    """Put every offline switch into the environment unless it is already set."""
    for name, value in OFFLINE_SWITCHES.items():
        os.environ.setdefault(name, value)
