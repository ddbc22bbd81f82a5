"""Each reader round-trips a file written in its exact format, and refuses bad files clearly."""

import functools
import gzip
import hashlib
import http.server
import threading

import numpy as np
import pytest
import torch

from dltrain.data.cifar import Cifar10DataModule
from dltrain.data.download import download
from dltrain.data.idx import FashionMnistDataModule, MnistDataModule, read_idx
from dltrain.data.image_folder import ImageFolderDataModule
from dltrain.data.synthetic import SyntheticDataModule
from dltrain.data.table import TableDataModule as CsvDataModule
from dltrain.errors import DataError
from tests.datasets import (
    idx_bytes,
    write_cifar10,
    write_csv,
    write_image_folder,
    write_mnist,
)


@pytest.mark.parametrize("gzipped", [True, False])
def test_idx_round_trip(tmp_path, gzipped):
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    data = idx_bytes(array)
    path = tmp_path / "a.idx"
    path.write_bytes(gzip.compress(data) if gzipped else data)
    assert torch.equal(read_idx(path), torch.from_numpy(array))


def test_idx_with_a_wrong_magic_number_is_refused(tmp_path):
    path = tmp_path / "bad"
    path.write_bytes(b"\x00\x01\x08\x01" + b"\x00" * 8)
    with pytest.raises(DataError, match="not an IDX file"):
        read_idx(path)
    path.write_bytes(idx_bytes(np.zeros((3, 2), np.uint8))[:-1])
    with pytest.raises(DataError, match="truncated"):
        read_idx(path)


@pytest.mark.parametrize(
    "module, folder", [(MnistDataModule, "mnist"), (FashionMnistDataModule, "fashion_mnist")]
)
def test_mnist_style_data_uses_its_own_test_split(tmp_path, module, folder):
    write_mnist(tmp_path / folder, n_train=100, n_test=20, gzipped=folder == "mnist")
    data = module(data_dir=str(tmp_path), seed=0)
    data.setup()
    assert data.input_shape == (1, 28, 28) and data.num_classes == 10
    assert len(data.splits["test"][1]) == 20  # the t10k files, untouched
    assert len(data.splits["train"][1]) + len(data.splits["val"][1]) == 100


def test_mnist_labels_out_of_range_are_refused(tmp_path):
    write_mnist(tmp_path / "mnist")
    labels = np.full(100, 12, dtype=np.uint8)
    (tmp_path / "mnist/train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(labels)))
    with pytest.raises(DataError, match="label 12"):
        MnistDataModule(data_dir=str(tmp_path)).setup()


def test_missing_mnist_files_name_the_files_and_the_place(tmp_path):
    with pytest.raises(DataError) as error:
        MnistDataModule(data_dir=str(tmp_path)).setup()
    message = str(error.value)
    assert "train-images-idx3-ubyte.gz" in message and str(tmp_path / "mnist") in message
    assert "data.download=true" in message


def test_cifar10_pickle_batches_round_trip(tmp_path):
    write_cifar10(tmp_path / "cifar10/cifar-10-batches-py")
    data = Cifar10DataModule(data_dir=str(tmp_path), batch_size=16)
    data.setup()
    assert data.input_shape == (3, 32, 32)
    assert data.class_names[:2] == ["airplane", "automobile"]
    assert (
        len(data.splits["test"][1]) == 20
        and data.class_counts().sum() + len(data.splits["val"][1]) == 100
    )


@pytest.mark.parametrize("mode, channels", [("RGB", 3), ("L", 1)])
def test_image_folder_infers_channels_and_streams_through_a_dataloader(tmp_path, mode, channels):
    write_image_folder(tmp_path / "pics", mode=mode)
    data = ImageFolderDataModule(path=str(tmp_path / "pics"), batch_size=8, num_workers=0)
    data.setup()
    assert data.class_names == ["cat", "dog", "fox"] and data.input_shape == (channels, 12, 10)
    x, y = next(iter(data.train_dataloader()))
    assert x.shape == (8, channels, 12, 10) and y.dtype == torch.long
    assert data.mean.shape == (channels, 1, 1)
    resized = ImageFolderDataModule(path=str(tmp_path / "pics"), image_size=[6, 5], batch_size=8)
    resized.setup()
    assert resized.input_shape == (channels, 6, 5)


def test_image_folder_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no class sub-folders"):
        ImageFolderDataModule(path=str(tmp_path / "empty")).setup()
    write_image_folder(tmp_path / "pics", per_class=4)
    (tmp_path / "pics/cat/broken.png").write_bytes(b"not a png at all")
    with pytest.raises(DataError, match="broken.png is not a readable image"):
        ImageFolderDataModule(path=str(tmp_path / "pics")).setup()
    with pytest.raises(DataError, match="no such folder"):
        ImageFolderDataModule(path=str(tmp_path / "nowhere")).setup()


def test_csv_maps_string_labels_to_sorted_ids(tmp_path):
    write_csv(tmp_path / "iris.csv")
    data = CsvDataModule(path=str(tmp_path / "iris.csv"), label_column="species", batch_size=16)
    data.setup()
    assert data.class_names == ["setosa", "versicolor", "virginica"]
    assert data.input_shape == (3,)


def test_csv_integer_labels_sort_numerically(tmp_path):
    rows = "x,label\n" + "".join(f"{i * 0.1},{[2, 10, 1][i % 3]}\n" for i in range(60))
    (tmp_path / "t.csv").write_text(rows)
    data = CsvDataModule(path=str(tmp_path / "t.csv"), batch_size=16)
    data.setup()
    assert data.class_names == ["1", "2", "10"]


@pytest.mark.parametrize(
    "content, message",
    [
        ("a,b\n1,2\n", "no label column 'label'"),
        ("a,lable\n1,2\n", "Did you mean 'lable'"),
        ("a,label\n" + "1,x\n" * 40, "one class only"),
        ("a,label\n" + "".join(f"{i},{i * 0.37:.3f}\n" for i in range(60)), "problem=regression"),
        (
            "a,b,label\n" + "".join(f"{i},,{i % 2}\n" for i in range(60)),
            "column 'b'.*empty in every training row",
        ),
        (
            "id,a,label\n" + "".join(f"u{i},{i},{i % 2}\n" for i in range(60)),
            "looks like an id.*data.drop=\\[id\\]",
        ),
        ("a,label\n1,x\n2,y\n", "cannot make a stratified split"),
    ],
)
def test_csv_errors_name_the_column(tmp_path, content, message):
    (tmp_path / "t.csv").write_text(content)
    with pytest.raises(DataError, match=message):
        CsvDataModule(path=str(tmp_path / "t.csv")).setup()


def test_synthetic_data_is_generated_from_the_seed():
    first = SyntheticDataModule(num_samples=200, shape=[5, 3], num_classes=4, seed=1)
    again = SyntheticDataModule(num_samples=200, shape=[5, 3], num_classes=4, seed=1)
    first.setup()
    again.setup()
    assert first.input_shape == (5, 3) and first.num_classes == 4
    assert torch.equal(first.splits["train"][0], again.splits["train"][0])


@pytest.fixture
def file_server(tmp_path):
    """A loopback HTTP server for `tmp_path/served`."""
    served = tmp_path / "served"
    served.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield served, f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


def test_download_checks_the_md5_and_never_leaves_a_partial_file(tmp_path, file_server):
    served, url = file_server
    (served / "data.bin").write_bytes(b"payload" * 1000)
    good = hashlib.md5(b"payload" * 1000).hexdigest()
    target = tmp_path / "out" / "data.bin"
    with pytest.raises(DataError, match="corrupt"):
        download(url + "data.bin", target, md5="0" * 32)
    assert list((tmp_path / "out").iterdir()) == []
    assert download(url + "data.bin", target, md5=good).read_bytes() == b"payload" * 1000
    with pytest.raises(DataError, match="could not download"):
        download(url + "missing.bin", tmp_path / "out" / "missing.bin", md5=good)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["data.bin"]


def test_images_of_mixed_sizes_are_resized_to_their_median_with_a_note(tmp_path):
    from PIL import Image

    from dltrain.data.image_folder import ImageFolderDataModule

    sizes = {"a": [(20, 30), (24, 30), (40, 50)], "b": [(24, 36), (600, 400), (24, 30)]}
    for label, shapes in sizes.items():
        (tmp_path / label).mkdir()
        for i, (h, w) in enumerate(shapes):
            Image.new("RGB", (w, h), (i * 40, 0, 0)).save(tmp_path / label / f"{i}.png")
    data = ImageFolderDataModule(path=str(tmp_path))
    samples = data.load()
    assert data.image_size == (24, 36)  # the (upper) median height and width
    assert samples.x[4].shape == (3, 24, 36)
    assert "resized to 24x36" in data.notes[0] and "data.image_size" in data.notes[0]
    from dltrain.data import image_folder

    assert image_folder.common_size([(900, 1200)] * 3 + [(10, 10)]) == (256, 256)


def test_an_image_folder_test_path_is_the_test_split_as_image_label_pairs(tmp_path):
    write_image_folder(tmp_path / "photos", per_class=8)
    write_image_folder(tmp_path / "held_out", classes=("cat", "dog", "fox"), per_class=2)
    data = ImageFolderDataModule(path=str(tmp_path / "photos"), test_path=str(tmp_path / "held_out"),
                                 batch_size=4, num_workers=0)  # fmt: skip
    data.setup("fit")
    batches = list(data.test_dataloader())
    labels = torch.cat([y for _, y in batches])
    assert sorted(labels.tolist()) == [0, 0, 1, 1, 2, 2]
    assert batches[0][0].shape[1:] == (3, 12, 10)


@pytest.mark.parametrize("module", [MnistDataModule, FashionMnistDataModule])
def test_download_fetches_each_published_file_name_and_checks_its_md5(tmp_path, file_server, module,
                                                                     monkeypatch):  # fmt: skip
    served, url = file_server
    write_mnist(served)  # the four files, under the names the publisher uses
    monkeypatch.setattr(module, "base_url", url)
    # The published checksums refuse these stand-in files: nothing is kept.
    data = module(data_dir=str(tmp_path / "data"), download=True)
    with pytest.raises(DataError, match="corrupt"):
        data.setup()
    assert not list((tmp_path / "data" / module.folder).glob("*.gz"))
    # With the stand-ins' own checksums each file is fetched by its published name and used.
    checksums = {role: (name, hashlib.md5((served / name).read_bytes()).hexdigest())
                 for role, (name, _) in module.files.items()}  # fmt: skip
    monkeypatch.setattr(module, "files", checksums)
    data = module(data_dir=str(tmp_path / "data"), download=True)
    data.setup()
    fetched = sorted(p.name for p in (tmp_path / "data" / module.folder).iterdir())
    assert fetched == sorted(name for name, _ in checksums.values())
    assert data.input_shape == (1, 28, 28) and data.external_test


def test_cifar_download_extracts_the_archive_once_checked(tmp_path, file_server, monkeypatch):
    import tarfile

    from dltrain.data import cifar

    served, url = file_server
    write_cifar10(tmp_path / "build" / "cifar-10-batches-py")
    with tarfile.open(served / "cifar-10-python.tar.gz", "w:gz") as archive:
        archive.add(tmp_path / "build" / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    monkeypatch.setattr(cifar, "URL", url + "cifar-10-python.tar.gz")
    data = Cifar10DataModule(data_dir=str(tmp_path / "data"), download=True)
    with pytest.raises(DataError, match="corrupt"):  # the published MD5 refuses a stand-in
        data.setup()
    assert not (tmp_path / "data" / "cifar10" / "cifar-10-batches-py").exists()
    digest = hashlib.md5((served / "cifar-10-python.tar.gz").read_bytes()).hexdigest()
    monkeypatch.setattr(cifar, "ARCHIVE_MD5", digest)
    data = Cifar10DataModule(data_dir=str(tmp_path / "data"), download=True)
    data.setup()
    assert data.input_shape == (3, 32, 32) and data.class_names[0] == "airplane"
    assert (tmp_path / "data" / "cifar10" / "cifar-10-batches-py" / "test_batch").is_file()
