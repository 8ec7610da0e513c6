"""Both storages in miniature: the JPEG shards and their index, resume, verify, corruption, and
read-back equal to a decoder run on the same bytes; raw and JPEG feed the same pipeline."""

import json
import zlib

import numpy as np
import pytest
import torch

import alexnet.data.prepare as prepare_module
from alexnet.cli.main import main
from alexnet.data.loader import EvalBatches, TrainBatches
from alexnet.data.prepare import prepare_dataset
from alexnet.data.prepared import PreparedDataset
from alexnet.data.stores import JpegStore, decode_jpeg
from alexnet.errors import AlexNetError
from conftest import dies_on_call, write_image


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """3 classes x (5 train + 2 val) smooth random images of mixed sizes (PNG, exact pixels), smooth as
    photographs are (JPEG's chroma subsampling would blur random colour blocks far more)."""
    from PIL import Image
    root = tmp_path_factory.mktemp("tree")
    rng = np.random.default_rng(0)
    for split, n in (("train", 5), ("val", 2)):
        for c in ("a", "b", "c"):
            for i in range(n):
                w, h = (int(v) for v in rng.integers(40, 70, 2))
                base = Image.fromarray(rng.integers(0, 256, (4, 4, 3)).astype(np.uint8))
                write_image(root / split / c / f"{i}.png", np.asarray(base.resize((w, h), Image.BICUBIC)))
    return root


@pytest.fixture(scope="module")
def both(tree, tmp_path_factory):
    out = tmp_path_factory.mktemp("both")
    for storage in ("raw", "jpeg"):
        prepare_dataset(tree, out / storage, size=32, workers=0, progress=False, storage=storage)
    return PreparedDataset(out / "raw"), PreparedDataset(out / "jpeg")


def test_jpeg_format_index_and_read_back(both):
    raw, jpeg = both
    info = jpeg.manifest["splits"]["train"]
    assert jpeg.manifest["storage"] == "jpeg" and info["storage"] == "jpeg" and info["quality"] == 90
    index = np.load(jpeg.root / info["images"])
    assert index.shape == (15, 4) and index.dtype == np.int64  # shard, offset, length, CRC-32
    shard = (jpeg.root / info["shards"][0]).read_bytes()
    for i, (k, offset, length, crc) in enumerate(index):
        assert k == 0 and shard[offset:offset + 2] == b"\xff\xd8"  # each entry starts a JPEG
        assert crc == zlib.crc32(shard[offset:offset + length])
        # read() is the decoder on exactly the indexed bytes
        np.testing.assert_array_equal(jpeg.read("train", [i])[0], decode_jpeg(shard[offset:offset + length]))
    # the same pixels as raw storage, up to JPEG's rounding
    diff = np.abs(jpeg.read("train", range(15)).astype(int) - raw.read("train", range(15)).astype(int))
    assert diff.mean() < 4 and raw.manifest  # 2.57 measured: busy at 32 px, far less at 256["storage"] == "raw"
    np.testing.assert_array_equal(np.asarray(jpeg.images["val"]), jpeg.read("val", [0, 1, 2, 3, 4, 5]))


def test_statistics_are_those_of_the_stored_pixels(both):
    _, jpeg = both
    pixels = jpeg.read("train", range(15)).astype(np.float64)
    np.testing.assert_allclose(jpeg.mean_image, pixels.mean(0), atol=1e-3)


def test_the_loader_reads_either_storage_the_same_way(both):
    raw, jpeg = both
    for ds in (raw, jpeg):
        batches = TrainBatches(ds.images["train"], ds.labels["train"], 4, 28, seed=1, pca_std=0.1)
        batches.set_epoch(2)
        batch = batches[batches.key(1)]
        crops, labels, corners, flips = batch.crops, batch.labels, batch.corners, batch.flips
        stored = ds.read("train", batches._indices(1, batches.order))
        for i in range(len(labels)):
            y, x = corners[i].tolist()
            want = stored[i, y:y + 28, x:x + 28]
            np.testing.assert_array_equal(crops[i].numpy(), want[:, ::-1] if flips[i] else want)
        images = EvalBatches(ds.images["val"], ds.labels["val"], 4)[0].images
        np.testing.assert_array_equal(images.numpy(), ds.read("val", range(4)))
    # the augmentation draws do not depend on the storage
    a = TrainBatches(raw.images["train"], raw.labels["train"], 4, 28, seed=1, pca_std=0.1)
    b = TrainBatches(jpeg.images["train"], jpeg.labels["train"], 4, 28, seed=1, pca_std=0.1)
    a.set_epoch(3), b.set_epoch(3)
    for field in ("labels", "corners", "flips", "alphas"):
        torch.testing.assert_close(getattr(a[a.key(0)], field), getattr(b[b.key(0)], field), rtol=0, atol=0)


def test_verify_decodes_and_catches_a_corrupt_shard(tree, tmp_path, capsys):
    out = tmp_path / "j"
    prepare_dataset(tree, out, size=32, workers=0, progress=False, storage="jpeg")
    assert main(["prepare", "--verify", str(out), "--quiet"]) == 0
    report = capsys.readouterr().out
    assert "checksums of images and labels and shards match" in report and "all 15 JPEGs decode" in report
    shard = out / "train_images.000.jpgs"
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0xFF
    shard.write_bytes(bytes(data))
    assert main(["prepare", "--verify", str(out), "--quiet"]) == 1
    assert "train_images.000.jpgs: SHA-256 differs" in capsys.readouterr().err
    shard.write_bytes(bytes(data[:100]))  # truncated: refused on opening, before any read
    with pytest.raises(AlexNetError, match="shorter than its index says"):
        PreparedDataset(out)


def test_an_index_pointing_outside_its_shards_is_refused(tree, tmp_path):
    out = tmp_path / "j"
    prepare_dataset(tree, out, size=32, workers=0, progress=False, storage="jpeg")
    index = np.load(out / "val_index.npy")
    index[0, 0] = 5
    np.save(out / "val_index.npy", index)
    with pytest.raises(AlexNetError, match="val_index.npy: index points outside its shards"):
        PreparedDataset(out)


def test_an_interrupted_jpeg_preparation_resumes_to_the_same_dataset(tree, tmp_path, monkeypatch):
    monkeypatch.setattr(prepare_module, "SAVE_PROGRESS_EVERY_S", 0.0)  # save after every image
    real, seen = prepare_module._work, []
    monkeypatch.setattr(prepare_module, "_work", dies_on_call(real, 9, seen))
    with pytest.raises(KeyboardInterrupt):
        prepare_dataset(tree, tmp_path / "r", size=32, workers=0, progress=False, storage="jpeg")
    assert not (tmp_path / "r" / "manifest.json").exists()
    monkeypatch.setattr(prepare_module, "_work", lambda task: (seen.append(task[0]), real(task))[1])
    seen.clear()
    prepare_dataset(tree, tmp_path / "r", size=32, workers=0, progress=False, storage="jpeg")
    assert len(seen) == 15 - 8 + 6  # train: the 7 not yet written; then val's 6
    prepare_dataset(tree, tmp_path / "fresh", size=32, workers=0, progress=False, storage="jpeg")
    resumed, fresh = PreparedDataset(tmp_path / "r"), PreparedDataset(tmp_path / "fresh")
    for split in ("train", "val"):
        np.testing.assert_array_equal(resumed.read(split, range(len(resumed.labels[split]))),
                                      fresh.read(split, range(len(fresh.labels[split]))))
    np.testing.assert_array_equal(resumed.mean_image, fresh.mean_image)


def test_default_storage_by_size(tree, tmp_path):
    small = prepare_dataset(tree, tmp_path / "s", size=32, workers=0, progress=False)
    big = prepare_dataset(tree, tmp_path / "b", size=128, workers=0, progress=False)
    assert small["storage"] == "raw" and big["storage"] == "jpeg"
    assert json.loads((tmp_path / "b" / "manifest.json").read_text())["splits"]["val"]["shards"] == \
        ["val_images.000.jpgs"]
    with pytest.raises(AlexNetError, match="--storage must be one of raw, jpeg"):
        prepare_dataset(tree, tmp_path / "x", size=32, workers=0, progress=False, storage="png")


def test_a_store_goes_to_loader_workers_without_open_files(both):
    import pickle
    _, jpeg = both
    store = jpeg.images["train"]
    store.read([0])  # opens its shard
    copy = pickle.loads(pickle.dumps(store))
    assert isinstance(copy, JpegStore) and copy._open_files is None and store._open_files is not None
    np.testing.assert_array_equal(copy.read([3]), store.read([3]))


def test_float_work_in_loader_workers_equals_the_training_process(both):
    """On the CPU with workers, the workers build the network's input; it must be what the training
    process computes from the same crops (bit for bit), for either storage, through shared memory."""
    from alexnet.data.augment import Augmentation
    from alexnet.data.loader import make_loader
    for ds in both:
        pre = Augmentation(ds.mean_image, ds.eigenvalues, ds.eigenvectors, 28, "aligned", "cpu")
        plain = TrainBatches(ds.images["train"], ds.labels["train"], 4, 28, seed=2, pca_std=0.1)
        in_workers = TrainBatches(ds.images["train"], ds.labels["train"], 4, 28, seed=2, pca_std=0.1,
                                  augmentation=pre)
        plain.set_epoch(1), in_workers.set_epoch(1)
        for b, batch in enumerate(make_loader(in_workers, 2, torch.device("cpu"))):
            want = plain[plain.key(b)]
            assert batch.inputs is not None and batch.inputs.is_shared() and batch.crops is None
            torch.testing.assert_close(batch.inputs, pre.train_batch(want.crops, want.corners, want.flips,
                                                                     want.alphas), rtol=0, atol=0)
            torch.testing.assert_close(batch.labels, want.labels, rtol=0, atol=0)


def test_both_decoders_give_the_same_pixels(both):
    """simplejpeg (where installed) and Pillow decode the stored JPEGs to identical pixels, so results do
    not depend on which decoder runs."""
    simplejpeg = pytest.importorskip("simplejpeg")
    from alexnet.data.stores import decode_jpeg_pillow
    _, jpeg = both
    store = jpeg.images["train"]
    for i in range(len(store)):
        data = bytes(store.encoded(i))
        np.testing.assert_array_equal(simplejpeg.decode_jpeg(data, colorspace="RGB"), decode_jpeg_pillow(data))


def test_every_pipeline_gives_the_same_network_input(both):
    """host (crops cut in the loader), device (whole stored images cut on the device) and nvjpeg (JPEG bytes
    decoded on the device: here a stand-in decoder, the CPU's, on the same bytes) give the same input bit
    for bit, through worker processes too; only the bytes each batch carries differ."""
    from alexnet.data.augment import Augmentation
    from alexnet.data.device_decode import split_encoded
    from alexnet.data.feed import network_input
    from alexnet.data.loader import make_loader

    def cpu_decode(encoded, lengths, device):
        return torch.stack([torch.from_numpy(decode_jpeg(p.numpy())) for p in split_encoded(encoded, lengths)])

    for ds in both:
        pre = Augmentation(ds.mean_image, ds.eigenvalues, ds.eigenvectors, 28, "aligned", "cpu")
        names = ("host", "device", "nvjpeg") if ds.manifest["storage"] == "jpeg" else ("host", "device")
        inputs = {}
        for name in names:
            batches = TrainBatches(ds.images["train"], ds.labels["train"], 4, 28, seed=3, pca_std=0.1, pipeline=name)
            batches.set_epoch(2)
            got = list(make_loader(batches, 2, torch.device("cpu")))
            carried = {f for f in ("crops", "images", "encoded") if getattr(got[0], f) is not None}
            assert carried == {{"host": "crops", "device": "images", "nvjpeg": "encoded"}[name]}
            inputs[name] = [network_input(b, pre, cpu_decode) for b in got]
        for name in names[1:]:
            for a, b in zip(inputs["host"], inputs[name]):
                assert torch.equal(a, b), name
    with pytest.raises(ValueError, match="nvjpeg pipeline reads JPEG storage"):
        TrainBatches(both[0].images["train"], both[0].labels["train"], 4, 28, seed=3, pca_std=0.1, pipeline="nvjpeg")


def test_nvjpeg_without_torchvision_is_one_clear_error(monkeypatch):
    import sys
    from alexnet.data.device_decode import nvjpeg_decoder
    monkeypatch.setitem(sys.modules, "torchvision.io", None)   # as where torchvision cannot be imported
    with pytest.raises(AlexNetError, match="--pipeline nvjpeg needs torchvision's GPU JPEG decoder"):
        nvjpeg_decoder()


def test_nvjpeg_waits_for_the_callers_stream_before_decoding(monkeypatch):
    """torchvision's GPU decoder writes from its own stream without waiting for the caller's: the stage
    must leave the caller's stream idle first (a stand-in decoder and stream record the order)."""
    import sys
    import types
    from alexnet.data.device_decode import nvjpeg_decoder
    calls = []

    class FakeStream:
        def synchronize(self):
            calls.append("synchronize")

    def fake_decode_jpeg(files, mode, device):
        calls.append("decode")
        return [torch.zeros(3, 2, 2, dtype=torch.uint8) for _ in files]

    fake = types.SimpleNamespace(decode_jpeg=fake_decode_jpeg, ImageReadMode=types.SimpleNamespace(RGB="RGB"))
    monkeypatch.setitem(sys.modules, "torchvision.io", fake)
    monkeypatch.setattr(torch.cuda, "current_stream", lambda device=None: FakeStream())
    decode = nvjpeg_decoder()
    images = decode(torch.zeros(6, dtype=torch.uint8), torch.tensor([3, 3]), torch.device("cuda", 0))
    assert calls == ["synchronize", "decode"] and tuple(images.shape) == (2, 2, 2, 3)
    calls.clear()
    decode(torch.zeros(6, dtype=torch.uint8), torch.tensor([3, 3]), torch.device("cpu"))
    assert calls == ["decode"]  # nothing to wait for off the GPU


def test_torchvision_decoder_reads_the_stored_jpegs(both):
    """Where torchvision loads (the GPU machine): its decoder on the stored bytes, as the nvjpeg pipeline
    calls it (on CUDA where there is one, else on the CPU), against libjpeg-turbo on the same bytes.
    nvJPEG fills in the halved chroma by repeating samples, where the CPU decoders interpolate ("fancy"
    upsampling): on these small, colourful images that moved pixels by 5.07 levels on average (H200,
    2026-11-26), exactly as much as libjpeg-turbo's own plain upsampling does, so on CUDA that is the
    reference. The host and nvjpeg pipelines see slightly different pixels (README, "Input pipelines")."""
    pytest.importorskip("torchvision.io", exc_type=ImportError)
    from alexnet.data.device_decode import nvjpeg_decoder
    _, jpeg = both
    store = jpeg.images["train"]
    parts = [np.frombuffer(store.encoded(i), np.uint8) for i in range(4)]
    encoded, lengths = torch.from_numpy(np.concatenate(parts)), torch.tensor([len(p) for p in parts])
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    got = nvjpeg_decoder()(encoded, lengths, device).cpu().numpy().astype(int)
    if device.type == "cuda":
        simplejpeg = pytest.importorskip("simplejpeg")
        want = np.stack([simplejpeg.decode_jpeg(p.tobytes(), colorspace="RGB", fastupsample=True) for p in parts])
    else:
        want = store.read(range(4))
    difference = np.abs(got - want.astype(int))
    assert got.shape == want.shape and difference.mean() < 0.5  # IDCTs may differ by a level here and there


@pytest.mark.parametrize("pipeline", ["host", "device"])
def test_the_feed_hands_over_the_same_batches_ahead_or_not(both, pipeline):
    """`InputFeed`: (batch, input, labels) for each batch; with `ahead` on CUDA (the GPU checks run this) the
    next batches are prepared in a thread and on a side stream, and what the steps receive must not change."""
    from alexnet.data.augment import Augmentation
    from alexnet.data.feed import InputFeed
    from alexnet.data.loader import make_loader
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    raw, _ = both
    pre = Augmentation(raw.mean_image, raw.eigenvalues, raw.eigenvectors, 28, "aligned", device)
    batches = TrainBatches(raw.images["train"], raw.labels["train"], 4, 28, seed=4, pca_std=0.1, pipeline=pipeline)
    batches.set_epoch(1)
    loader = make_loader(batches, 0, device)
    plain = [(x.cpu(), y.cpu()) for _, x, y in InputFeed(pre)(loader)]
    ahead = [(x.float().sum().item(), x.cpu(), y.cpu()) for _, x, y in InputFeed(pre, ahead=True)(loader)]
    assert len(plain) == len(ahead) == len(batches)
    for (x, y), (_, x2, y2) in zip(plain, ahead):
        assert torch.equal(x, x2) and torch.equal(y, y2)
    assert all(InputFeed.for_pipeline(pre, name).ahead for name in ("host", "device"))
    assert not InputFeed.for_pipeline(pre, "host", ahead=False).ahead


def test_staging_in_a_thread_keeps_order_raises_and_stops():
    """`in_background` (the ahead feed's thread): every result in order; an error in the thread is raised in
    the consumer; a consumer that stops early stops the thread, which takes nothing more from its items."""
    import threading
    from alexnet.data.feed import in_background

    main_thread = threading.get_ident()
    where = []

    def stage(n):
        where.append(threading.get_ident())
        return n * n

    assert list(in_background(range(7), stage)) == [n * n for n in range(7)]
    assert where and main_thread not in where  # the work happened elsewhere

    def failing(n):
        if n == 3:
            raise ValueError("bad batch 3")
        return n

    got = []
    with pytest.raises(ValueError, match="bad batch 3"):
        for value in in_background(range(10), failing):
            got.append(value)
    assert got == [0, 1, 2]

    taken = []

    def counted():
        for n in range(1000):
            taken.append(n)
            yield n

    staged = in_background(counted(), lambda n: n, depth=2)
    assert [next(staged), next(staged)] == [0, 1]
    staged.close()
    assert not any(t.name == "alexnet-input-staging" for t in threading.enumerate())
    assert len(taken) <= 6  # two handed over, two queued, one in hand: the rest never read


def test_default_loader_workers_leave_the_training_process_two_cores(monkeypatch):
    """On CUDA: the usable cores (shared by the ranks on the machine) less two, between 1 and 16 (the H200's 16
    cores: 14, the fastest end to end); none on the CPU. The cores are this process's share, as a scheduler
    or container sets it."""
    import os
    import alexnet.data.loader as loader
    from alexnet.data.workers import usable_cores

    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    for cores, workers in [(16, 14), (8, 6), (4, 2), (3, 1), (2, 1), (1, 1), (64, 16)]:
        monkeypatch.setattr(loader, "usable_cores", lambda cores=cores: cores)
        assert loader.default_workers(cuda) == workers
        assert loader.default_workers(cpu) == 0
    # data-parallel ranks on one machine share its cores: 8 ranks on 64 cores, 6 workers each
    monkeypatch.setattr(loader, "usable_cores", lambda: 64)
    assert [loader.default_workers(cuda, ranks) for ranks in (1, 2, 8, 64)] == [16, 16, 6, 1]
    if hasattr(os, "sched_getaffinity"):
        assert usable_cores() == len(os.sched_getaffinity(0))


def test_a_loader_short_of_shared_memory_is_refused_in_one_line(both, tmp_path, monkeypatch, capsys):
    """Workers hand batches over in shared memory (/dev/shm): short of it a worker's batch cannot be sent and
    training waited for ever, under worker tracebacks (seen with a 20 MB /dev/shm, as Docker's 64 MB default
    is for large batches). The loader is refused before it starts, naming how many workers would fit."""
    import collections
    import alexnet.data.loader as loader
    from alexnet.data.loader import make_loader

    raw, jpeg = both
    batches = TrainBatches(raw.images["train"], raw.labels["train"], 4, 28, seed=0, pca_std=0.1)
    batch = 4 * 28 * 28 * 3  # uint8 crops, as for a GPU
    assert batches.batch_bytes() == batch
    usage = collections.namedtuple("usage", "total used free")
    # two workers: 5 batches each (made ahead, or their reused buffers), 2 held by the training process
    monkeypatch.setattr(loader.shutil, "disk_usage", lambda path: usage(0, 0, (2 * loader.HELD_BY_A_WORKER + 2) * batch))
    make_loader(batches, 2, torch.device("cpu"))  # fits
    make_loader(batches, 0, torch.device("cpu"))  # no workers, no shared memory
    with pytest.raises(AlexNetError, match=r"3 loader workers need about .* MB of shared memory and /dev/shm has "
                                           r".* MB free: use --workers 2 or fewer"):
        make_loader(batches, 3, torch.device("cpu"))
    # the other forms a batch travels in: whole images, JPEG files, float inputs made in the workers
    whole = TrainBatches(raw.images["train"], raw.labels["train"], 4, 28, seed=0, pca_std=0.1, pipeline="device")
    assert whole.batch_bytes() == 4 * raw.size ** 2 * 3
    files = TrainBatches(jpeg.images["train"], jpeg.labels["train"], 4, 28, seed=0, pca_std=0.1, pipeline="nvjpeg")
    assert 0 < files.batch_bytes() < whole.batch_bytes()
    monkeypatch.setattr(loader.shutil, "disk_usage", lambda path: usage(0, 0, 1 << 16))
    code = main(["train", "--data", str(raw.root), "--out", str(tmp_path / "run"), "--preset", "small", "--epochs",
                 "1", "--device", "cpu", "--workers", "2", "--batch-size", "128"])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and "of shared memory" in err and "--workers 0 (loading in" in err
    images = min(128, len(raw.labels["train"]))  # a batch is at most the training set
    train_batch = images * 3 * 28 * 28 * 4  # float inputs made in the CPU's workers
    val_batch = min(128, len(raw.labels["val"])) * raw.size ** 2 * 3  # validation's whole images, as many workers
    need = (2 * loader.HELD_BY_A_WORKER + 2) * (train_batch + val_batch)
    assert (f"2 loader workers (and as many for validation) need about {need / 2**20:.1f} MB of shared memory and "
            "/dev/shm has 0.1 MB free") in err
