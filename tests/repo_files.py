"""The clone's files as git sees them: what a wheel, an sdist or the extension zip is built from."""

import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def shipped_files() -> list[str]:
    """Tracked files, and new ones git does not ignore."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, capture_output=True, text=True,
                            check=True).stdout.splitlines()
    return [name for name in listed if (REPO / name).is_file()]


def model_files() -> list[str]:
    """Every file under vendor_models/: the models, the sample, their cards."""
    return sorted(name for name in shipped_files() if name.startswith("vendor_models/"))
