"""Logging for `cardrag serve`: uvicorn's own configuration plus cardrag's loggers.

The access log (`cardrag.access`) is one JSON object per line and nothing else, ready for a
log shipper; it replaces uvicorn's access log, which knows neither the request id nor the
route. Other cardrag messages are formatted like uvicorn's.
"""

import copy
from typing import Any


def log_config() -> dict[str, Any]:
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["formatters"]["json_line"] = {"format": "%(message)s"}
    config["handlers"]["cardrag_access"] = {
        "class": "logging.StreamHandler",
        "formatter": "json_line",
        "stream": "ext://sys.stdout",
    }
    config["loggers"]["cardrag"] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    config["loggers"]["cardrag.access"] = {
        "handlers": ["cardrag_access"],
        "level": "INFO",
        "propagate": False,
    }
    return config
