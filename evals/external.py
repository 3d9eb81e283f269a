"""Where the read-only shared/ material lies (the seed page, decks others wrote): beside the
checkout (CI, /work/main, a worktree under /work), else the workplace's own. Tests and the
probe's training skip it when it is absent."""

from pathlib import Path

from rag.settings import REPO_ROOT


def shared_dir() -> Path:
    candidates = (REPO_ROOT.parent / "shared", Path("/work/shared"))
    return next((path for path in candidates if path.is_dir()), candidates[0])


THEORY_MD = shared_dir() / "external" / "data-science-interviews" / "theory.md"
