"""What a recorded status means: an answer, or a failure the client saw."""

from __future__ import annotations

import pandas as pd

SWITCHING_PROTOCOLS = 101  # a WebSocket session's answer: the upgrade, then the session


def answered(status: pd.Series) -> pd.Series:
    """Where an instance answered: a 2xx, or a WebSocket's upgrade."""
    return ((status >= 200) & (status < 300)) | (status == SWITCHING_PROTOCOLS)


def failed_status(status: pd.Series) -> pd.Series:
    """Where the client got no answer or an error status (4xx, 5xx); a redirect is an answer."""
    return ((status < 200) & (status != SWITCHING_PROTOCOLS)) | (status >= 400)
