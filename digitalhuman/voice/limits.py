"""Input bounds shared by the CLI, the API and the HTTP service."""

MAX_TEXT_CHARS = 2000  # one line of dialogue; longer text is refused, not truncated
