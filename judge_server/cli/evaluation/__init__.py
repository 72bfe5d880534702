"""``judge-server eval``: score labelled data with a rubric and report agreement per source."""
