"""Input limits shared by every way in (HTTP API, CLI): what a question or a learner's
answer may be, stated once so the API's 422 and the CLI's error cannot disagree."""

MAX_QUESTION_CHARS = 1000
MAX_LEARNER_ANSWER_CHARS = 2000
