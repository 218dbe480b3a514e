"""Class-name files in the shapes datasets ship, and the descriptions JSON."""
from __future__ import annotations

import json

import pytest

from froster.data.classes import class_texts, read_class_names, read_descriptions


@pytest.mark.parametrize(
    "text",
    [
        "abseiling\nair drumming\n10 pin bowling\n",  # plain list, a name starting with a number
        "id,name\n0,abseiling\n1,air drumming\n2,10 pin bowling\n",  # Kinetics CSV
        "2,10 pin bowling\n0,abseiling\n1,air drumming\n",  # CSV out of order, no header
        "1 abseiling\n2 air drumming\n3 10 pin bowling\n",  # UCF classInd.txt, 1-based
    ],
)
def test_class_name_forms(tmp_path, text):
    path = tmp_path / "classes.txt"
    path.write_text(text)
    assert read_class_names(path) == ["abseiling", "air drumming", "10 pin bowling"]


def test_ids_that_are_not_a_range_are_read_as_names(tmp_path):
    path = tmp_path / "classes.txt"
    path.write_text("3 stooges\n7 dwarfs\n")
    assert read_class_names(path) == ["3 stooges", "7 dwarfs"]


def test_repeated_and_empty_class_files_fail(tmp_path):
    path = tmp_path / "classes.txt"
    path.write_text("a\nb\na\n")
    with pytest.raises(ValueError, match="more than once"):
        read_class_names(path)
    path.write_text("\n")
    with pytest.raises(ValueError, match="no class names"):
        read_class_names(path)


NAMES = ["abseiling", "Air Drumming"]


def _json(tmp_path, data):
    path = tmp_path / "descriptions.json"
    path.write_text(json.dumps(data))
    return path


def test_descriptions_from_object_and_list_come_back_in_class_order(tmp_path):
    by_name = {"air  drumming": " Drumming in the air. ", "abseiling": "Going down a rope."}
    assert read_descriptions(_json(tmp_path, by_name), NAMES) == ["Going down a rope.", "Drumming in the air."]
    assert read_descriptions(_json(tmp_path, ["x.", "y."]), NAMES) == ["x.", "y."]
    assert class_texts(NAMES) == NAMES
    assert class_texts(NAMES, _json(tmp_path, ["x.", "y."])) == ["x.", "y."]


def test_description_mismatches_are_reported_together(tmp_path):
    with pytest.raises(ValueError) as info:
        read_descriptions(_json(tmp_path, {"abseiling": "", "surfing": "On a wave."}), NAMES)
    message = str(info.value)
    assert "Air Drumming" in message and "surfing" in message and "[0]" in message
    with pytest.raises(ValueError, match="3 descriptions for 2 classes"):
        read_descriptions(_json(tmp_path, ["a", "b", "c"]), NAMES)
    with pytest.raises(ValueError, match="not non-empty strings"):
        read_descriptions(_json(tmp_path, ["a", 3]), NAMES)
    with pytest.raises(ValueError, match="object or list"):
        read_descriptions(_json(tmp_path, "a"), NAMES)
