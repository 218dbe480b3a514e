"""Class-name files in the shapes datasets ship, and the descriptions JSON."""
from __future__ import annotations

import json

import pytest

from froster.data.classes import (
    ClassFileError,
    ClassListError,
    read_class_prompts,
    parse_class_list,
    read_class_names,
    read_descriptions,
)
from froster.data.textfiles import DataFileError


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


def test_quoted_csv_names_keep_their_commas(tmp_path):
    """Label CSVs quote names that hold commas (Something-Something's templates)."""
    path = tmp_path / "labels.csv"
    path.write_text('id,name\n1,"Pretending to pour something out of something, but something is empty"\n0,Tipping something over\n')
    assert read_class_names(path) == [
        "Tipping something over",
        "Pretending to pour something out of something, but something is empty",
    ]


def test_repeated_and_empty_class_files_fail_naming_the_lines(tmp_path):
    path = tmp_path / "classes.txt"
    path.write_text("a\nb\n\nA\n")
    with pytest.raises(ClassFileError, match=r"more than once: 'A' on line 4 \(first on line 1\)"):
        read_class_names(path)
    path.write_text("id,name\n0,x\n1,y\n2,x\n")
    with pytest.raises(ClassFileError, match=r"'x' on line 4 \(first on line 2\)"):
        read_class_names(path)
    for empty in ("", "\n \n", "# only a comment\n"):
        path.write_text(empty)
        with pytest.raises(ClassFileError, match="classes.txt: no class names"):
            read_class_names(path)


@pytest.mark.parametrize("reader", ["class names", "descriptions"])
def test_files_that_are_not_utf8_name_the_file_and_the_line(tmp_path, reader):
    path = tmp_path / "names.txt"
    text = "abseiling\nair drumming\ncaf\u00e9 dancing\n" if reader == "class names" else '[\n"a",\n"caf\u00e9"\n]'
    path.write_bytes(text.encode("latin-1"))
    line = 3
    with pytest.raises(DataFileError, match=rf"names.txt: line {line}, byte \d+: not UTF-8"):
        if reader == "class names":
            read_class_names(path)
        else:
            read_descriptions(path, ["x", "y"])
    path.write_bytes(text.encode("utf-8"))  # the same text as UTF-8 reads
    if reader == "class names":
        assert read_class_names(path)[2] == "caf\u00e9 dancing"


def test_broken_descriptions_json_names_the_line(tmp_path):
    path = tmp_path / "descriptions.json"
    path.write_text('{\n  "a": "x",\n  "b": "y"\n  "c": "z"\n}')
    with pytest.raises(DataFileError, match="descriptions.json: line 4"):
        read_descriptions(path, ["a", "b", "c"])


def test_a_class_list_obeys_the_rules_of_a_class_file(tmp_path):
    """--classes 'a,a,b' is refused as a file listing a twice is; a file works the same way."""
    assert parse_class_list(" juggling, abseiling ,surfing") == ["juggling", "abseiling", "surfing"]
    with pytest.raises(ClassListError, match=r"'a' at position 2 \(first at 1\)"):
        parse_class_list("a,a,b")
    with pytest.raises(ClassListError, match=r"'Air  Drumming' at position 3"):
        parse_class_list("air drumming,b,Air  Drumming")
    with pytest.raises(ClassListError, match=r"empty class name at position\(s\) \[2, 4\]"):
        parse_class_list("a,,b,")
    for nothing in ("", " ", ",", " , "):
        with pytest.raises(ClassListError, match="no class names"):
            parse_class_list(nothing)
    with pytest.raises(FileNotFoundError, match="class-name file 'missing/classes.txt' not found"):
        parse_class_list("missing/classes.txt")
    path = tmp_path / "classes.txt"
    path.write_text("a\nb\na\n")
    with pytest.raises(ClassFileError, match="more than once"):
        parse_class_list(str(path))
    path.write_text("1 b\n0 a\n")
    assert parse_class_list(str(path)) == ["a", "b"]


NAMES = ["abseiling", "Air Drumming"]


def _json(tmp_path, data):
    path = tmp_path / "descriptions.json"
    path.write_text(json.dumps(data))
    return path


def test_descriptions_from_object_and_list_come_back_in_class_order(tmp_path):
    by_name = {"air  drumming": " Drumming in the air. ", "abseiling": "Going down a rope."}
    assert read_descriptions(_json(tmp_path, by_name), NAMES) == ["Going down a rope.", "Drumming in the air."]
    assert read_descriptions(_json(tmp_path, ["x.", "y."]), NAMES) == ["x.", "y."]


def test_released_label_files_give_the_prompt_name_and_the_description(tmp_path):
    # FROSTER's rephrased label files: keyed by class index, "<name>: <description>".
    released = {"1": "Air Drumming: A person drums in the air: no sticks.", "0": "Abseiling: A person goes down a rope."}
    path = _json(tmp_path, released)
    assert read_descriptions(path, NAMES) == ["A person goes down a rope.", "A person drums in the air: no sticks."]
    classes = read_class_prompts(NAMES, path)
    assert [c.name for c in classes] == ["Abseiling", "Air Drumming"]
    assert classes[1].entry == released["1"]  # the bare prompt is the file's entry, as released
    assert classes[0].prompt("a video of {}.") == "a video of Abseiling. Abseiling: A person goes down a rope."
    assert [c.name for c in read_class_prompts(NAMES)] == NAMES and read_class_prompts(NAMES)[0].description is None
    with pytest.raises(DataFileError, match=r"descriptions.json: a label file keyed by class index must have the keys 0\.\.1"):
        read_class_prompts(NAMES, _json(tmp_path, {"0": "Abseiling: x", "2": "y: z"}))


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
