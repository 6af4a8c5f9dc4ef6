"""A user's own data, refused: every bad or hostile file gets its own message, within the caps, and no pickle is
ever loaded."""

from __future__ import annotations

import io
import pickle
import re
import struct
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dgm_core.data import archives, upload_rules
from dgm_core.data.upload import DataError, points_from_drawing, read_upload
from tests.user_data_files import (
    POINTS,
    MakesDirectoryWhenUnpickled,
    npy_header,
    patch_directory,
    payload,
    png,
    png_header,
    random_levels,
    refused,
    write_lines,
    write_points,
    write_zip,
)

# --- Bad text -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["a.csv", "a.npy", "a.npz", "a.zip", "a.png"])
def test_an_empty_file_is_refused(tmp_path, name):
    (tmp_path / name).write_bytes(b"")
    others = pngs(tmp_path, 29) if name == "a.png" else []
    assert refused(*others, tmp_path / name) == f"{name} is empty."


def test_a_file_of_blank_lines_is_refused(tmp_path):
    (tmp_path / "a.csv").write_text("\n  \n\t\n")
    assert "only blank lines" in refused(tmp_path / "a.csv")


def test_a_csv_with_only_a_header_is_refused(tmp_path):
    (tmp_path / "a.csv").write_text("x,y\n")
    assert "a header line but no numbers" in refused(tmp_path / "a.csv")


def test_a_csv_with_one_column_is_refused(tmp_path):
    (tmp_path / "a.csv").write_text("x\n" + "\n".join(str(x) for x in POINTS[:, 0]))
    assert "has one column; it needs two numbers per line" in refused(tmp_path / "a.csv")


@pytest.mark.parametrize("columns", [3, 5])
def test_a_csv_with_three_or_more_columns_is_refused_naming_the_count(tmp_path, columns):
    (tmp_path / "a.csv").write_text("\n".join(",".join(["1.5"] * columns) for _ in range(60)))
    assert f"has {columns} columns; it needs exactly two (x and y)" in refused(tmp_path / "a.csv")


def test_text_where_a_number_should_be_is_refused_naming_the_line_and_the_text(tmp_path):
    path = write_lines(tmp_path / "a.csv", "x,y", "1,2", "3,abc")
    assert refused(path) == "a.csv, line 3: 'abc' is not a number."


def test_a_first_line_with_some_number_is_data_not_a_header(tmp_path):
    path = write_lines(tmp_path / "a.csv", "1,y")
    assert refused(path) == "a.csv, line 1: 'y' is not a number."


def test_a_line_with_a_different_number_of_fields_is_refused_naming_it(tmp_path):
    path = write_lines(tmp_path / "a.csv", "x,y", "1,2", "3,4", "5,6,7")
    assert "a.csv, line 4 has 3 fields; every line needs exactly two numbers" in refused(path)


def test_separators_that_could_each_split_every_line_in_two_are_refused_as_ambiguous(tmp_path):
    (tmp_path / "a.csv").write_text("\n".join(f"{i},5;{i}" for i in range(60)))
    assert "is ambiguous: commas and semicolons each split every line in two" in refused(tmp_path / "a.csv")


def test_text_that_is_not_utf8_is_refused(tmp_path):
    (tmp_path / "a.csv").write_bytes(bytes(range(128, 256)))
    assert "is not a UTF-8 text file" in refused(tmp_path / "a.csv")


@pytest.mark.parametrize("value", ["nan", "inf", "-Infinity", "1e999"])
def test_nan_or_infinite_values_are_refused_naming_the_line(tmp_path, value):
    path = write_lines(tmp_path / "a.csv", "x,y", "1,2", f"3,{value}")
    assert refused(path) == "a.csv, line 3 holds NaN or an infinite value; use finite numbers only."


def test_huge_magnitudes_are_refused_asking_for_rescaling(tmp_path):
    path = write_lines(tmp_path / "a.csv", "1,2", "-3e9,4")
    assert refused(path) == "a.csv, line 2 holds -3e+09; values must stay within ±1,000,000, so rescale them."


def test_too_few_points_are_refused_stating_the_minimum(tmp_path):
    path = write_points(tmp_path / "a.csv", POINTS[:49])
    assert refused(path) == "a.csv has 49 points; at least 50 are needed for training, validation and test."


def test_too_many_points_are_refused_stating_the_cap(tmp_path):
    (tmp_path / "a.csv").write_text("1,2\n" * 200_001)
    assert refused(tmp_path / "a.csv") == "a.csv has 200,001 points; the cap is 200,000."


def test_millions_of_lines_are_refused_before_they_are_split_into_a_list(tmp_path):
    (tmp_path / "a.csv").write_text("\n" * (upload_rules.MAX_FILE_BYTES - 1))
    message, peak = refused_with_peak(tmp_path / "a.csv")
    assert "lines; the cap is 200,000 points" in message
    assert peak < 100e6  # a list of 20 million lines would take 160 MB


def test_a_line_too_long_to_hold_two_numbers_is_refused_before_it_is_split(tmp_path):
    (tmp_path / "a.txt").write_text("x y\n" + "12 " * 700_000)
    assert (
        refused(tmp_path / "a.txt") == "a.txt, line 2 is 2,100,000 characters long; a line holds two numbers, x and y."
    )


def test_a_long_bad_token_or_file_name_is_cut_short_in_the_message(tmp_path):
    name = "n" * 200 + ".csv"
    path = write_lines(tmp_path / name, "1,2", "3," + "z" * 900)
    message = refused(path)
    assert len(message) < 160 and "…" in message and "z" * 39 in message and "z" * 40 not in message


# --- Bad files of any kind ----------------------------------------------------------------------------------------


def test_an_unknown_suffix_is_refused_listing_the_supported_ones(tmp_path):
    (tmp_path / "a.xlsx").write_bytes(b"PK")
    assert "a.xlsx is not a supported type; upload .csv, .tsv, .txt, .npy, .npz, .zip" in refused(tmp_path / "a.xlsx")


def test_several_data_files_at_once_are_refused(tmp_path):
    assert "one data file" in refused(write_points(tmp_path / "a.csv"), write_points(tmp_path / "b.csv"))


def test_an_image_size_other_than_8_or_16_is_refused(tmp_path):
    assert (
        refused(write_points(tmp_path / "a.csv"), image_size=12) == "Images can be resized to 8×8 or 16×16, not 12×12."
    )


def test_a_file_over_the_size_cap_is_refused_before_it_is_read(tmp_path):
    with (tmp_path / "a.csv").open("wb") as file:
        file.truncate(upload_rules.MAX_FILE_BYTES + 1)  # sparse: its size is all that is there
    assert refused(tmp_path / "a.csv") == "a.csv is over the 20 MB cap per file."


def test_a_file_that_never_ends_is_read_only_up_to_the_cap(tmp_path):
    (tmp_path / "a.csv").symlink_to("/dev/zero")
    assert refused(tmp_path / "a.csv") == "a.csv is over the 20 MB cap per file."


def damaged_variants(data: bytes, rng: np.random.Generator) -> list[bytes]:
    cuts = [data[: int(n)] for n in rng.integers(1, len(data), 8)]
    flips = []
    for _ in range(8):
        flipped = bytearray(data)
        for i in rng.integers(0, len(data), 4):
            flipped[i] ^= 1 << int(rng.integers(8))
        flips.append(bytes(flipped))
    return cuts + flips


def test_damaged_files_of_every_format_raise_nothing_but_data_error(tmp_path):
    sources = {"a.csv": write_points(tmp_path / "src.csv").read_bytes(), "a.png": png(random_levels(1)[0])}
    np.save(tmp_path / "src.npy", random_levels(30))
    np.savez_compressed(tmp_path / "src.npz", x=random_levels(30), y=np.arange(30) % 2)
    sources |= {"a.npy": (tmp_path / "src.npy").read_bytes(), "a.npz": (tmp_path / "src.npz").read_bytes()}
    sources["a.zip"] = write_zip(
        tmp_path / "src.zip", {f"{i}.png": png(levels) for i, levels in enumerate(random_levels(30))}
    ).read_bytes()
    rng = np.random.default_rng(1)
    for name, data in sources.items():
        for variant in damaged_variants(data, rng):
            (tmp_path / name).write_bytes(variant)
            paths = [tmp_path / name] * (30 if name == "a.png" else 1)
            try:
                read_upload(paths)
            except DataError:
                pass


# --- Bad images ---------------------------------------------------------------------------------------------------


def pngs(tmp_path: Path, n: int = 30, **special: bytes) -> list[Path]:
    """n good 8×8 PNG files, some replaced by the given bytes."""
    paths = []
    for i in range(n):
        paths.append(tmp_path / f"{i}.png")
        paths[-1].write_bytes(png(random_levels(1)[0]))
    for name, data in special.items():
        paths.append(tmp_path / name)
        paths[-1].write_bytes(data)
    return paths


def test_too_few_images_are_refused_stating_the_minimum(tmp_path):
    assert (
        refused(*pngs(tmp_path, 29))
        == "The upload has 29 images; at least 30 are needed for training, validation and test."
    )


def test_a_png_that_is_text_or_another_format_or_cut_short_is_refused(tmp_path):
    gif = io.BytesIO()
    Image.new("L", (8, 8)).save(gif, format="GIF")
    for bad in (b"hello, I am text", gif.getvalue(), png(random_levels(1)[0])[:60]):
        (tmp_path / "bad.png").write_bytes(bad)
        assert refused(*pngs(tmp_path, 29), tmp_path / "bad.png") == "bad.png is not a readable PNG or JPEG image."


@pytest.mark.parametrize(("width", "height"), [(5_000, 5_000), (20_000, 20_000), (65_535, 65_535)])
def test_a_png_declaring_too_many_pixels_is_refused_before_it_is_decoded(tmp_path, width, height):
    limit = Image.MAX_IMAGE_PIXELS
    message = refused(*pngs(tmp_path, 29, **{"bomb.png": png_header(width, height)}))
    assert message.startswith("bomb.png declares") and message.endswith("the cap is 16,777,216 pixels per image.")
    assert Image.MAX_IMAGE_PIXELS == limit


def test_images_adding_up_to_too_many_pixels_are_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(archives, "MAX_TOTAL_PIXELS", 1_000)
    assert "pixels together; upload smaller images" in refused(*pngs(tmp_path))


# --- Bad zips -----------------------------------------------------------------------------------------------------


def good_members(n: int = 30) -> dict[str, bytes]:
    return {f"{i}.png": png(levels) for i, levels in enumerate(random_levels(n))}


def test_a_zip_that_is_not_a_zip_is_refused(tmp_path):
    (tmp_path / "a.zip").write_text("not a zip")
    assert refused(tmp_path / "a.zip") == "a.zip is not a valid zip file."


@pytest.mark.parametrize("name", ["../evil.png", "a/../../evil.png", "/etc/evil.png", "C:/evil.png", "..\\evil.png"])
def test_a_zip_with_an_unsafe_path_is_refused_whole_and_nothing_is_written(tmp_path, name):
    path = write_zip(tmp_path / "a.zip", good_members() | {name: png(random_levels(1)[0])})
    before = sorted(tmp_path.parent.rglob("*"))
    assert "contains the unsafe path" in refused(path)
    assert sorted(tmp_path.parent.rglob("*")) == before


def test_a_zip_with_too_many_members_is_refused_before_they_are_listed(tmp_path):
    path = write_zip(tmp_path / "a.zip", {f"{i}.txt": b"" for i in range(10_001)})
    assert refused(path) == "a.zip holds more than 10,000 files, the cap."


@pytest.mark.parametrize("inner", ["inner.zip", "more/inner.npz", "x.tar.gz"])
def test_a_zip_inside_a_zip_is_refused(tmp_path, inner):
    path = write_zip(tmp_path / "a.zip", good_members() | {inner: b"PK\x03\x04"})
    assert "is an archive inside the archive" in refused(path)


def test_a_password_protected_zip_is_refused(tmp_path):
    path = write_zip(tmp_path / "a.zip", good_members())
    patch_directory(path, member=3, flags=0x1)
    assert refused(path) == "a.zip: 3.png is password-protected; zip the files without a password."


def test_a_zip_with_an_unusual_compression_method_is_refused(tmp_path):
    path = write_zip(tmp_path / "a.zip", good_members(), compression=zipfile.ZIP_LZMA)
    assert "uses an unsupported compression method" in refused(path)


def test_a_zip_member_declaring_more_than_the_cap_is_refused_without_unpacking_it(tmp_path):
    with zipfile.ZipFile(tmp_path / "bomb.zip", "w", zipfile.ZIP_DEFLATED) as archive:
        with archive.open("bomb.png", "w") as member:
            for _ in range(60):
                member.write(bytes(1 << 20))  # 60 MiB of zeros, about 60 kB once compressed
    message, peak = refused_with_peak(tmp_path / "bomb.zip")
    assert message == "bomb.zip: bomb.png is over the 20 MB cap per file."
    assert peak < 20e6


def test_a_zip_member_compressed_more_than_100_to_1_is_refused_as_a_bomb(tmp_path):
    path = write_zip(tmp_path / "a.zip", good_members() | {"zeros.png": bytes(5_000_000)})
    message = refused(path)
    assert message.startswith("a.zip: zeros.png unpacks to") and message.endswith("its size (the cap is 100×).")


def test_a_zip_whose_members_declare_over_100_mb_together_is_refused(tmp_path):
    path = write_zip(tmp_path / "a.zip", good_members(6))
    for member in range(6):
        patch_directory(path, member, file_size=19_000_000, compress_size=1_000_000)
    assert refused(path) == "a.zip unpacks to over 100 MB, the cap."


def test_a_zip_member_holding_more_than_its_header_declares_is_refused_as_damaged(tmp_path):
    path = write_zip(tmp_path / "a.zip", good_members() | {"big.png": bytes(5_000_000)})
    patch_directory(path, member=30, file_size=1_000)
    assert refused(path) == "a.zip: big.png is damaged and cannot be unpacked."


def test_a_zip_needing_an_unknown_zip_version_is_refused_as_invalid(tmp_path):
    path = write_zip(tmp_path / "a.zip", good_members())
    patch_directory(path, member=0, version=96)
    assert refused(path) == "a.zip is not a valid zip file."


def test_a_zip_member_without_a_name_is_refused(tmp_path):
    path = write_zip(tmp_path / "a.zip", good_members() | {"": b"x"})
    assert refused(path) == "a.zip contains the unsafe path '', so none of it was read."


def test_a_zip_with_no_images_is_refused(tmp_path):
    assert refused(write_zip(tmp_path / "a.zip", {"a.txt": b"x"})) == "a.zip holds no .png or .jpg images."


def test_a_zip_with_more_than_100_folders_is_refused(tmp_path):
    members = {f"class{i}/0.png": png(random_levels(1)[0]) for i in range(101)}
    assert refused(write_zip(tmp_path / "a.zip", members)) == "a.zip has 101 folders (classes); the cap is 100."


# --- Bad NumPy files ----------------------------------------------------------------------------------------------


def test_an_npy_of_python_objects_is_refused_and_its_pickle_never_loaded(tmp_path):
    marker = tmp_path / "unpickled"
    np.save(tmp_path / "a.npy", payload(marker), allow_pickle=True)
    assert refused(tmp_path / "a.npy").startswith("a.npy holds Python objects, which are never loaded")
    assert not marker.exists()
    np.load(tmp_path / "a.npy", allow_pickle=True)  # the payload is live: loading it would have run it
    assert marker.exists()


def test_an_npz_of_python_objects_is_refused_and_its_pickle_never_loaded(tmp_path):
    marker = tmp_path / "unpickled"
    np.savez(tmp_path / "a.npz", x=payload(marker))
    assert "holds Python objects, which are never loaded" in refused(tmp_path / "a.npz")
    assert not marker.exists()
    np.load(tmp_path / "a.npz", allow_pickle=True)["x"]
    assert marker.exists()


def test_a_pickle_named_npy_or_inside_an_npz_is_refused_and_never_loaded(tmp_path):
    marker = tmp_path / "unpickled"
    (tmp_path / "a.npy").write_bytes(pickle.dumps(MakesDirectoryWhenUnpickled(marker)))
    assert refused(tmp_path / "a.npy") == "a.npy is not a valid NumPy .npy file; save it with numpy.save."
    write_zip(tmp_path / "a.npz", {"x.pkl": pickle.dumps(MakesDirectoryWhenUnpickled(marker))})
    assert refused(tmp_path / "a.npz") == "a.npz holds 'x.pkl', which is not a NumPy array."
    assert not marker.exists()
    pickle.loads((tmp_path / "a.npy").read_bytes())
    assert marker.exists()


@pytest.mark.parametrize(
    ("shape", "message"),
    [
        ((10**12, 2), "a.npy has 1,000,000,000,000 points; the cap is 200,000."),
        ((5_001, 8, 8), "a.npy has 5,001 images; the cap is 5,000."),
        ((29, 8, 8), "a.npy has 29 images; at least 30 are needed for training, validation and test."),
        (
            (100, 100_000, 100_000),
            "a.npy holds images of 100,000×100,000 pixels; the cap is 16,777,216 pixels per image.",
        ),
        ((100, 3), "a.npy has shape (100, 3); use (n, 2) points or (n, h, w) images."),
        ((100,), "a.npy has shape (100,); use (n, 2) points or (n, h, w) images."),
        ((100, 3, 8, 8), "a.npy has shape (100, 3, 8, 8); use (n, 2) points or (n, h, w) images."),
        ((100, 0, 8), "a.npy has shape (100, 0, 8); use (n, 2) points or (n, h, w) images."),
    ],
)
def test_an_npy_declaring_a_wrong_shape_or_size_is_refused_from_its_header(tmp_path, shape, message):
    assert refused(npy_header(tmp_path / "a.npy", shape)) == message


@pytest.mark.parametrize(
    "header",
    [
        b"{'descr': '<f8', 'fortran_order': False, 'shape': (60,",  # cut short: numpy's tokenizer fails
        b"-" * 5_000 + b"1",  # deep enough to exhaust the parser's recursion
        b"{'descr': [(1, 2, 3, 4)], 'fortran_order': False, 'shape': (60, 2)}",
        b"[1, 2]",
    ],
)
def test_an_npy_with_a_malformed_header_is_refused(tmp_path, header):
    (tmp_path / "a.npy").write_bytes(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header)
    assert refused(tmp_path / "a.npy") == "a.npy is not a valid NumPy .npy file; save it with numpy.save."


def test_an_npy_of_text_or_records_is_refused(tmp_path):
    assert refused(npy_header(tmp_path / "a.npy", (100, 2), "<U5")) == "a.npy holds <U5 values; save numbers."


def test_an_npy_cut_short_is_refused_as_damaged(tmp_path):
    np.save(tmp_path / "a.npy", POINTS)
    (tmp_path / "a.npy").write_bytes((tmp_path / "a.npy").read_bytes()[:-8])
    assert refused(tmp_path / "a.npy") == "a.npy is damaged: its header declares 960 bytes of data."


def test_npy_images_with_nan_or_one_value_everywhere_are_refused(tmp_path):
    images = np.zeros((30, 8, 8))
    images[3, 2, 1] = np.nan
    np.save(tmp_path / "a.npy", images)
    assert refused(tmp_path / "a.npy") == "a.npy holds NaN or infinite pixel values."
    np.save(tmp_path / "a.npy", np.full((30, 8, 8), 200.0))
    assert refused(tmp_path / "a.npy") == "a.npy: every pixel has the value 200, so there is nothing to learn."


def test_an_npz_with_unknown_array_names_is_refused_asking_for_x_and_y(tmp_path):
    np.savez(tmp_path / "a.npz", data=POINTS, target=np.arange(60))
    assert refused(tmp_path / "a.npz") == "a.npz holds the arrays: data, target; name the data x and its labels y."


def test_npz_labels_must_be_integers_one_per_item(tmp_path):
    np.savez(tmp_path / "a.npz", x=POINTS, y=np.arange(59))
    assert refused(tmp_path / "a.npz") == "a.npz has 59 labels for 60 items; give one label per item."
    np.savez(tmp_path / "a.npz", x=POINTS, y=np.arange(60) / 2)
    assert refused(tmp_path / "a.npz") == "a.npz: y holds float64 values; save integers."


# --- Bad drawings -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("xy", "message"),
    [
        (np.zeros((60, 3)), "The drawing has shape (60, 3); it must be (n, 2) points."),
        (np.zeros((10, 2)), "The drawing has 10 points; at least 50 are needed for training, validation and test."),
        ([[1, 2], [3]], "The drawing is not a list of (x, y) points."),
        (
            np.where(np.arange(120).reshape(60, 2) == 9, np.inf, 0),
            "The drawing's point 5 holds NaN or an infinite value",
        ),
    ],
)
def test_a_drawing_of_the_wrong_shape_too_few_points_or_non_finite_values_is_refused(xy, message):
    with pytest.raises(DataError, match=re.escape(message)):
        points_from_drawing(xy)


def refused_with_peak(path) -> tuple[str, int]:
    """The message refusing ``path``, and the most memory (bytes) Python allocated on the way to it."""
    tracemalloc.start()
    try:
        message = refused(path)
        return message, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
