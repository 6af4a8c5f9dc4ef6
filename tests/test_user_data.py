"""A user's own data, read: what each format gives, and the data set it becomes (splits, spec, content hash)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dgm_core.data.upload import UserData, points_from_drawing, read_upload
from dgm_core.data.user import user_dataset
from tests.user_data_files import POINTS, RNG, png, random_levels, write_points, write_zip

# --- What each format gives -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "sep", "header", "style"),
    [
        ("a.csv", ",", "x,y", "comma-separated, header skipped"),
        ("a.csv", ",", None, "comma-separated"),
        ("a.tsv", "\t", "x\ty", "tab-separated, header skipped"),
        ("a.csv", ";", "x;y", "semicolon-separated, header skipped"),
        ("a.txt", "|", None, "pipe-separated"),
        ("a.txt", " ", "x y", "whitespace-separated, header skipped"),
        ("a.txt", "   ", None, "whitespace-separated"),
        ("a.txt", " \t ", None, "tab-separated"),
        ("a.csv", ", ", "x, y", "comma-separated, header skipped"),
    ],
)
def test_two_numeric_columns_are_read_with_any_one_separator_and_an_optional_header(tmp_path, name, sep, header, style):
    data = read_upload([write_points(tmp_path / name, sep=sep, header=header)])
    assert data.kind == "points2d" and data.labels is None and data.class_names is None
    assert data.items.dtype == np.float32 and data.items.shape == (60, 2)
    np.testing.assert_allclose(data.items, POINTS, rtol=1e-6)
    assert data.note == f"read 60 points from {name} ({style})"


def test_lines_mixing_tabs_and_spaces_are_read_as_whitespace_separated(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("\n".join(f"{x}{' ' if i % 2 else chr(9)}{y}" for i, (x, y) in enumerate(POINTS)))
    data = read_upload([path])
    np.testing.assert_allclose(data.items, POINTS, rtol=1e-6)
    assert data.note == "read 60 points from a.txt (whitespace-separated)"


def test_blank_lines_windows_line_endings_and_a_byte_order_mark_are_tolerated(tmp_path):
    path = tmp_path / "a.csv"
    path.write_bytes(b"\xef\xbb\xbfx,y\r\n\r\n" + b"\r\n\r\n".join(f"{x},{y}".encode() for x, y in POINTS))
    np.testing.assert_allclose(read_upload([path]).items, POINTS, rtol=1e-6)


def test_an_npy_of_points_is_read_as_points_in_either_memory_order(tmp_path):
    np.save(tmp_path / "c.npy", POINTS)
    np.save(tmp_path / "f.npy", np.asfortranarray(POINTS))
    for name in ("c.npy", "f.npy"):
        data = read_upload([tmp_path / name])
        assert data.kind == "points2d" and data.note == f"read 60 points from {name}"
        np.testing.assert_allclose(data.items, POINTS, rtol=1e-6)


def test_an_npy_of_whole_number_levels_is_kept_as_it_is(tmp_path):
    levels = random_levels(40)
    np.save(tmp_path / "d.npy", levels)
    data = read_upload([tmp_path / "d.npy"])
    assert data.kind == "image" and data.items.dtype == np.float32 and data.items.shape == (40, 1, 8, 8)
    np.testing.assert_array_equal(data.items[:, 0], levels)
    assert data.note == "read 40 images of 8×8 from d.npy, whole-number levels 0..16 kept"


def test_npy_images_of_other_values_and_sizes_are_rescaled_from_min_max_and_resized(tmp_path):
    images = RNG.integers(0, 256, size=(40, 28, 28)).astype(np.uint8)
    images[0, 0, 0], images[0, 0, 1] = 0, 255
    np.save(tmp_path / "u8.npy", images)
    data = read_upload([tmp_path / "u8.npy"])
    assert data.items.shape == (40, 1, 8, 8)
    assert set(np.unique(data.items)) <= set(range(17))
    assert data.note == "resized 40 images of 28×28 from u8.npy to 8×8, values 0..255 rescaled to levels 0..16"


def test_npy_images_with_a_channel_axis_and_float_values_are_read_at_16_by_16(tmp_path):
    images = np.full((30, 1, 16, 16), 0.5)
    images[:, :, 0, 0], images[:, :, 0, 1] = 0.0, 1.0
    np.save(tmp_path / "f.npy", images)
    data = read_upload([tmp_path / "f.npy"], image_size=16)
    assert data.items.shape == (30, 1, 16, 16)
    assert data.items[0, 0, 0, 0] == 0 and data.items[0, 0, 0, 1] == 16 and data.items[0, 0, 5, 5] == 8
    assert "values 0..1 rescaled to levels 0..16" in data.note


@pytest.mark.parametrize("save", [np.savez, np.savez_compressed])
def test_an_npz_with_images_and_labels_gives_class_labels_0_to_k(tmp_path, save):
    levels, y = random_levels(40), np.array([3, 7] * 20)
    save(tmp_path / "d.npz", x=levels, y=y)
    data = read_upload([tmp_path / "d.npz"])
    np.testing.assert_array_equal(data.items[:, 0], levels)
    assert data.labels.dtype == np.int64
    np.testing.assert_array_equal(data.labels, (y == 7).astype(int))
    assert data.class_names == ("3", "7") and data.note.endswith(", 2 classes")


def test_an_npz_of_one_array_or_of_points_with_labels_is_read(tmp_path):
    np.savez(tmp_path / "one.npz", POINTS)
    np.testing.assert_allclose(read_upload([tmp_path / "one.npz"]).items, POINTS, rtol=1e-6)
    np.savez(tmp_path / "two.npz", points=POINTS, labels=np.arange(60) % 3)
    data = read_upload([tmp_path / "two.npz"])
    assert data.kind == "points2d" and data.class_names == ("0", "1", "2") and data.labels[:4].tolist() == [0, 1, 2, 0]
    assert data.note == "read 60 points from two.npz, 3 classes"


def test_png_files_become_grey_levels_with_black_as_0_and_white_as_16(tmp_path):
    levels = random_levels(30)
    paths = []
    for i, image in enumerate(levels):
        paths.append(tmp_path / f"{i}.png")
        paths[-1].write_bytes(png(image, mode="RGB" if i % 2 else "L"))
    data = read_upload(paths)
    assert data.kind == "image" and data.items.shape == (30, 1, 8, 8) and data.labels is None
    np.testing.assert_array_equal(data.items[:, 0], levels)
    assert data.note == "read 30 images of 8×8"


def test_jpeg_files_are_read_and_large_ones_resized(tmp_path):
    paths = [tmp_path / f"{i}.jpg" for i in range(30)]
    for path in paths:
        path.write_bytes(png(np.full((480, 640), 8), mode="RGB", format="JPEG"))
    data = read_upload(paths)
    np.testing.assert_array_equal(data.items, 8)
    assert data.note == "resized 30 images of 640×480 to 8×8"


def test_images_of_mixed_sizes_are_resized_and_the_note_says_so(tmp_path):
    paths = [tmp_path / f"{i}.png" for i in range(30)]
    for i, path in enumerate(paths):
        path.write_bytes(png(np.full((10, 10) if i % 2 else (30, 20), 16)))
    data = read_upload(paths, image_size=16)
    assert data.items.shape == (30, 1, 16, 16)
    np.testing.assert_array_equal(data.items, 16)
    assert data.note == "resized 30 images of mixed sizes (10×10 to 20×30) to 16×16"


def test_a_zip_with_two_folders_gives_class_labels_from_the_folder_names(tmp_path):
    members = {
        f"{folder}/{i}.png": png(np.full((8, 8), level))
        for folder, level in [("dogs", 4), ("cats", 12)]
        for i in range(15)
    }
    data = read_upload([write_zip(tmp_path / "pets.zip", members)])
    assert data.class_names == ("cats", "dogs")
    np.testing.assert_array_equal(data.items[:, 0, 0, 0], np.where(data.labels == 0, 12, 4))
    assert data.note == "read 30 images of 8×8 from pets.zip, 2 classes from folders"


def test_a_zip_without_folders_gives_no_labels_and_skips_macos_metadata_and_hidden_files(tmp_path):
    members = {f"{i}.png": png(np.full((8, 8), 16)) for i in range(30)}
    members |= {"__MACOSX/._0.png": b"\x00\x05\x16\x07", ".DS_Store": b"\x00", "README.txt": b"hello"}
    data = read_upload([write_zip(tmp_path / "flat.zip", members)])
    assert data.labels is None and data.class_names is None and data.items.shape == (30, 1, 8, 8)
    assert data.note == "read 30 images of 8×8 from flat.zip, 1 other files ignored"


def test_a_drawing_becomes_points():
    data = points_from_drawing(POINTS)
    np.testing.assert_allclose(data.items, POINTS, rtol=1e-6)
    assert data.kind == "points2d" and data.note == "read 60 drawn points"


# --- A user data set ----------------------------------------------------------------------------------------------


def labelled_images(n: int = 50) -> UserData:
    """Images filled with their own label, so that labels can be checked against items after splitting."""
    labels = np.arange(n) % 3
    items = np.broadcast_to(labels[:, None, None, None], (n, 1, 8, 8)).astype(np.float32)
    return UserData("image", items, labels.astype(np.int64), ("a", "b", "c"), "made in a test")


def test_a_user_data_set_is_split_70_10_20_from_a_seed_without_losing_or_repeating_an_item():
    data = UserData("points2d", RNG.normal(size=(100, 2)).astype(np.float32), None, None, "note")
    a, b, c = user_dataset(data, "mine", seed=0), user_dataset(data, "mine", seed=0), user_dataset(data, "mine", 1)
    assert (len(a.train), len(a.val), len(a.test)) == (70, 10, 20)
    for split in ("train", "val", "test"):
        assert torch.equal(getattr(a, split), getattr(b, split))
        assert not torch.equal(getattr(a, split), getattr(c, split))
    together = torch.cat([a.train, a.val, a.test]).numpy()
    np.testing.assert_array_equal(np.unique(together, axis=0), np.unique(data.items, axis=0))
    assert a.labels == {}


def test_a_user_data_set_spec_describes_it_from_its_training_split():
    data = UserData("points2d", RNG.normal(size=(100, 2)).astype(np.float32), None, None, "read 100 drawn points")
    dataset = user_dataset(data, "my points")
    spec, train = dataset.spec, dataset.train
    assert spec.name == "my points" and spec.kind == "points2d" and spec.shape == (2,) and spec.levels is None
    assert spec.n_classes is None and spec.class_names is None
    np.testing.assert_allclose(spec.mean, train.mean(0).tolist(), rtol=1e-6)
    np.testing.assert_allclose(spec.std, train.std(0).tolist(), rtol=1e-6)
    assert spec.description == "read 100 drawn points"


def test_a_user_image_set_has_17_levels_and_labels_for_every_split():
    dataset = user_dataset(labelled_images(), "mine")
    spec = dataset.spec
    assert spec.kind == "image" and spec.shape == (1, 8, 8) and spec.levels == 17
    assert spec.n_classes == 3 and spec.class_names == ("a", "b", "c")
    assert (len(dataset.train), len(dataset.val), len(dataset.test)) == (35, 5, 10)
    for split in ("train", "val", "test"):
        labels = dataset.labels[split]
        assert labels.dtype == torch.long
        assert torch.equal(labels.float(), getattr(dataset, split)[:, 0, 0, 0])


def test_the_content_hash_is_stable_across_runs_and_reads_and_changes_with_any_value_or_label(tmp_path):
    data = labelled_images(30)
    assert data.content_hash() == "f3c150ee0fad6e2c"  # fixed: the same data must hash alike in every run
    items = data.items.copy()
    items[7, 0, 3, 3] += 1
    assert UserData("image", items, data.labels, data.class_names, "").content_hash() != data.content_hash()
    labels = data.labels.copy()
    labels[0] = 2
    assert UserData("image", data.items, labels, data.class_names, "").content_hash() != data.content_hash()
    path = write_points(tmp_path / "a.csv")
    assert read_upload([path]).content_hash() == read_upload([path]).content_hash()
