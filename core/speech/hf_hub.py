"""Settings for loading from Hugging Face: offline unless downloads are allowed, and transformers kept quiet.

Both the speech encoder's loader (:mod:`.encoder`) and the pretraining checkpoints (:mod:`.pretrain`) load
through these, so neither goes online or prints progress bars unasked.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Iterator


@contextmanager
def quiet_transformers() -> Iterator[None]:
    """Silence transformers' warnings and its weight-loading/saving progress bars for the duration (restored after)."""
    import transformers

    logging = transformers.utils.logging
    verbosity, bars = logging.get_verbosity(), logging.is_progress_bar_enabled()
    logging.set_verbosity_error()
    logging.disable_progress_bar()
    try:
        yield
    finally:
        logging.set_verbosity(verbosity)
        if bars:
            logging.enable_progress_bar()


@contextmanager
def offline_hub(allow_download: bool) -> Iterator[None]:
    """Offline for the duration of a load unless downloads are allowed: HF_HUB_OFFLINE=1, and the flag
    huggingface_hub derived from it at import time.

    ``local_files_only=True`` alone is not enough: huggingface_hub 2.x builds request headers even for a cache
    lookup, and that fetches an agent registry from the Hub once per process unless its offline constant is set
    (huggingface_hub reads the variable only when first imported, so a process that imported it earlier would
    still go online). Both are restored afterwards."""
    if allow_download:
        yield
        return
    old_env = os.environ.get("HF_HUB_OFFLINE")
    os.environ["HF_HUB_OFFLINE"] = "1"
    from huggingface_hub import constants

    old_flag = constants.HF_HUB_OFFLINE
    constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = old_flag
        if old_env is None:
            os.environ.pop("HF_HUB_OFFLINE", None)
        else:
            os.environ["HF_HUB_OFFLINE"] = old_env
