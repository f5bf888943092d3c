"""Tools that check the harness's own code: not used by runs."""
