"""Split files: both line forms, headers, and errors that name the file and the line."""
from __future__ import annotations

import pytest

from froster.data.annotations import MissingVideosError, SplitFileError, read_split, write_split


def _touch(root, *names):
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")


def test_space_and_comma_lines_with_header_comments_and_spaces_in_paths(tmp_path):
    _touch(tmp_path, "a.mp4", "dir/b c.mp4", "d,e.mp4")
    split = tmp_path / "split.csv"
    split.write_text("path,label\n\na.mp4 0\n# a comment\ndir/b c.mp4\t2\nd,e.mp4,1\n")
    records = read_split(split, num_classes=3)
    assert [(r.path, r.label, r.line) for r in records] == [
        (str(tmp_path / "a.mp4"), 0, 3),
        (str(tmp_path / "dir/b c.mp4"), 2, 5),
        (str(tmp_path / "d,e.mp4"), 1, 6),
    ]


def test_root_defaults_to_split_directory_and_can_be_given(tmp_path):
    _touch(tmp_path / "videos", "a.mp4")
    write_split(tmp_path / "lists" / "train.txt", [("a.mp4", 0)])
    with pytest.raises(MissingVideosError):
        read_split(tmp_path / "lists" / "train.txt")
    (record,) = read_split(tmp_path / "lists" / "train.txt", root=tmp_path / "videos")
    assert record.path == str(tmp_path / "videos" / "a.mp4")


def test_malformed_lines_are_all_reported_with_line_numbers(tmp_path):
    split = tmp_path / "train.txt"
    split.write_text("a.mp4 0\nb.mp4 zero\nc.mp4\nd.mp4 7\ne.mp4 -1\n")
    with pytest.raises(SplitFileError) as info:
        read_split(split, num_classes=5, on_missing="ignore")
    message = str(info.value)
    assert "train.txt" in message and "4 bad line(s)" in message
    for line in ("line 2:", "line 3:", "line 4: label 7", "line 5: label -1"):
        assert line in message


def test_a_one_field_first_line_is_an_error_not_a_header(tmp_path):
    split = tmp_path / "train.txt"
    split.write_text("a.mp4\n")
    with pytest.raises(SplitFileError, match="line 1"):
        read_split(split, on_missing="ignore")


def test_missing_videos_error_lists_every_one_with_its_line(tmp_path):
    _touch(tmp_path, "here.mp4")
    split = write_split(tmp_path / "val.txt", [("gone1.mp4", 0), ("here.mp4", 1), ("gone2.mp4", 0)])
    with pytest.raises(MissingVideosError) as info:
        read_split(split)
    message = str(info.value)
    assert "val.txt" in message and "2 of 3" in message
    assert "line 1:" in message and "gone1.mp4" in message and "line 3:" in message and "gone2.mp4" in message
    assert [r.line for r in info.value.missing] == [1, 3]


def test_skip_drops_missing_videos_with_one_warning(tmp_path):
    _touch(tmp_path, "here.mp4")
    split = write_split(tmp_path / "val.txt", [("gone1.mp4", 0), ("here.mp4", 1), ("gone2.mp4", 0)])
    with pytest.warns(UserWarning, match="2 of 3") as record:
        records = read_split(split, on_missing="skip")
    assert len(record) == 1 and "line 3:" in str(record[0].message)
    assert [(r.label, r.line) for r in records] == [(1, 2)]


def test_ignore_does_not_look_at_the_file_system(tmp_path):
    split = write_split(tmp_path / "val.txt", [("gone.mp4", 0)])
    assert len(read_split(split, on_missing="ignore")) == 1
    with pytest.raises(ValueError, match="on_missing"):
        read_split(split, on_missing="warn")


def test_an_empty_split_is_an_error(tmp_path):
    split = tmp_path / "train.txt"
    for text in ("", "\n\n", "# nothing\n", "path,label\n"):
        split.write_text(text)
        with pytest.raises(SplitFileError, match="train.txt: no videos listed"):
            read_split(split, on_missing="ignore")


def test_a_split_that_is_not_utf8_names_the_file_and_the_line(tmp_path):
    split = tmp_path / "train.txt"
    split.write_bytes("a.mp4 0\nb.mp4 1\ncaf\u00e9.mp4 2\n".encode("latin-1"))
    with pytest.raises(SplitFileError, match=r"train.txt: line 3, byte 4: not UTF-8"):
        read_split(split, on_missing="ignore")
    # A byte-order mark is not counted: the line, byte and bytes shown are those of the text.
    split.write_bytes(b"\xef\xbb\xbf" + "caf\u00e9.mp4 2\n".encode("latin-1"))
    with pytest.raises(SplitFileError, match=r"train.txt: line 1, byte 4: not UTF-8 \(bytes b'\\xe9\.mp'\)"):
        read_split(split, on_missing="ignore")
    split.write_bytes(b"\xef\xbb\xbfa.mp4 0\n")
    assert read_split(split, on_missing="ignore")[0].path.endswith("a.mp4")


def test_the_missing_videos_hint_names_only_things_that_exist(tmp_path):
    """The hint names a command that parses and a VideoDataConfig field, never a key a run config lacks."""
    import dataclasses

    from froster.cli import build_parser
    from froster.data import VideoDataConfig

    split = write_split(tmp_path / "val.txt", [("gone.mp4", 0)])
    with pytest.raises(MissingVideosError) as info:
        read_split(split)
    hint = str(info.value).splitlines()[-1]
    assert "froster data check SPLIT --root ROOT --clean NEW_SPLIT" in hint
    args = build_parser().parse_args(["data", "check", "SPLIT", "--root", "ROOT", "--clean", "NEW_SPLIT"])
    assert (args.split, args.root, args.clean) == ("SPLIT", "ROOT", "NEW_SPLIT")
    assert "VideoDataConfig(on_missing='skip')" in hint
    assert "on_missing" in {f.name for f in dataclasses.fields(VideoDataConfig)}
