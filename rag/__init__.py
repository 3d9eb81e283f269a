"""cardrag core: cards, ingestion, retrieval, prompting, citations and answers.

Importing the package switches every model and telemetry library to offline mode first
(see rag.offline), before any of them is imported anywhere.
"""

from rag.offline import enforce_offline

enforce_offline()
