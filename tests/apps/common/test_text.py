"""The one check of a required line of text (names of products, categories, rules, widgets,
reports)."""

import pytest

from apps.common.errors import UserError
from apps.common.text import required_text


def test_text_is_stripped_and_kept():
    assert required_text("  Tea  ", field="name", max_length=3, missing="Name it.") == "Tea"


@pytest.mark.parametrize(("value", "code"), [("", "REQUIRED"), ("   ", "REQUIRED"), (None, "REQUIRED"), (42, "REQUIRED"),
                                             ("Teas", "TOO_LONG")])
def test_missing_and_long_text_is_refused(value, code):
    with pytest.raises(UserError) as refused:
        required_text(value, field="name", max_length=3, missing="Name it.")
    assert (refused.value.code, refused.value.field) == (code, "name")
