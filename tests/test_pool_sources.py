"""Image pools: scikit-image crops, folders and S3 prefixes behind one interface."""

import pickle

import pytest
from PIL import Image

from stimuli.models import ImagePool
from stimuli.pools import FolderSource, PoolError, S3Source, SkimageCrops, open_pool


def png(path, colour=(200, 10, 10), size=(20, 12)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path)


def test_skimage_crops_are_the_same_for_the_same_seed():
    first, second = SkimageCrops(size=30, seed=4), SkimageCrops(size=30, seed=4)
    assert first.keys() == second.keys()
    key = first.keys()[7]
    assert first.load(key).tobytes() == second.load(key).tobytes()


def test_skimage_crops_differ_between_seeds():
    assert SkimageCrops(size=30, seed=4).keys() != SkimageCrops(size=30, seed=5).keys()


def test_skimage_crops_are_rgb_images_of_the_box_in_their_key():
    pool = SkimageCrops(size=20, seed=0)
    assert len(set(pool.keys())) == 20
    for key in pool.keys():
        width, height = (int(v) for v in key.rsplit("/", 1)[1].split(",")[2:])
        image = pool.load(key)
        assert image.mode == "RGB" and image.size == (width, height)


def test_a_crop_pool_needs_a_size():
    with pytest.raises(PoolError, match="size"):
        SkimageCrops(size=0)


def test_folder_keys_are_sorted_image_paths(tmp_path):
    png(tmp_path / "b.png")
    png(tmp_path / "a" / "z.JPG")
    png(tmp_path / "c.jpeg")
    (tmp_path / "notes.txt").write_text("not an image")
    pool = FolderSource(str(tmp_path))
    assert pool.keys() == ["a/z.JPG", "b.png", "c.jpeg"]
    assert pool.load("b.png").getpixel((0, 0)) == (200, 10, 10)


def test_folder_images_are_converted_to_rgb(tmp_path):
    Image.new("L", (10, 10), 90).save(tmp_path / "grey.png")
    assert FolderSource(str(tmp_path)).load("grey.png").mode == "RGB"


def test_a_missing_folder_is_reported(tmp_path):
    with pytest.raises(PoolError, match="does not exist"):
        FolderSource(str(tmp_path / "nowhere")).keys()


def test_an_empty_folder_is_reported(tmp_path):
    (tmp_path / "readme.txt").write_text("no images here")
    with pytest.raises(PoolError, match="has no images"):
        FolderSource(str(tmp_path)).keys()


def test_an_unreadable_image_names_its_key(tmp_path):
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")
    pool = FolderSource(str(tmp_path))
    with pytest.raises(PoolError, match="broken.jpg"):
        pool.load(pool.keys()[0])


def test_open_pool_builds_the_source_a_row_names(tmp_path):
    png(tmp_path / "x.png")
    assert isinstance(open_pool(ImagePool(source="skimage_crops", size=3)), SkimageCrops)
    assert open_pool(ImagePool(source="folder", location=str(tmp_path))).keys() == ["x.png"]


@pytest.fixture
def bucket(s3, tmp_path):
    s3.create_bucket(Bucket="pool")
    for name, colour in [("b.png", (0, 0, 255)), ("a.png", (0, 255, 0))]:
        png(tmp_path / name, colour)
        s3.upload_file(str(tmp_path / name), "pool", f"images/{name}")
    s3.put_object(Bucket="pool", Key="images/index.csv", Body=b"a,b")
    s3.put_object(Bucket="pool", Key="other/c.png", Body=b"")
    return s3


def test_s3_keys_are_the_sorted_images_under_the_prefix(bucket):
    assert S3Source("s3://pool/images/").keys() == ["images/a.png", "images/b.png"]


def test_s3_images_are_loaded(bucket):
    assert S3Source("s3://pool/images").load("images/b.png").getpixel((3, 3)) == (0, 0, 255)


def test_s3_size_limits_the_pool(bucket):
    assert S3Source("s3://pool/images", limit=1).keys() == ["images/a.png"]


def test_an_empty_s3_prefix_is_reported(bucket):
    with pytest.raises(PoolError, match="has no images"):
        S3Source("s3://pool/nothing/").keys()


def test_an_s3_source_pickles_without_its_client(bucket):
    source = S3Source("s3://pool/images")
    source.keys()
    copy = pickle.loads(pickle.dumps(source))
    assert copy._client is None
    assert copy.load("images/a.png").getpixel((0, 0)) == (0, 255, 0)


def test_a_malformed_s3_location_is_refused():
    with pytest.raises(PoolError, match="s3://bucket/prefix"):
        S3Source("pool/images")
