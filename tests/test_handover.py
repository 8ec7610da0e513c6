"""How a loader worker's batch reaches the training process (`data/handover.py`): the workers reuse their
batches' shared-memory buffers, never while the training process may still read one, and every batch it is
given stays as it was, whatever it holds on to; small fields travel as arrays."""

import pickle
import types

import numpy as np
import pytest
import torch

import alexnet.data.handover as handover
import alexnet.data.loader as loader_module
from alexnet.data.loader import HELD_BY_A_WORKER, EvalBatches, TrainBatches, make_loader
from alexnet.data.handover import BatchSlots


def _dataset(tmp_path, count=40, size=10):
    images = np.random.default_rng(3).integers(0, 256, (count, size, size, 3), dtype=np.uint8)
    path = tmp_path / "x.npy"
    np.save(path, images)
    return str(path), np.arange(count) % 4


def test_a_slot_is_reused_only_once_handed_back(monkeypatch):
    """In a worker (here worker 1 of 2, 3 slots each): its own slots in turn; with all of them lent, fresh
    buffers (never a wait); a handed-back slot comes again with the same memory; a smaller batch (an
    epoch's last) uses the front of it, a larger one gets a new buffer."""
    monkeypatch.setattr(handover, "get_worker_info", lambda: types.SimpleNamespace(id=1))
    slots = BatchSlots(workers=2, per_worker=3)
    taken = [slots.take((2, 4, 4, 3), torch.uint8) for _ in range(5)]
    assert [slot for _, slot in taken] == [3, 4, 5, -1, -1]
    assert slots.lent.tolist() == [0, 0, 0, 1, 1, 1]
    addresses = {buffer.untyped_storage().data_ptr() for buffer, _ in taken}
    assert len(addresses) == 5 and all(buffer.shape == (2, 4, 4, 3) for buffer, _ in taken)
    slots.hand_back(4)
    again, slot = slots.take((2, 4, 4, 3), torch.uint8)
    assert slot == 4 and again.data_ptr() == taken[1][0].data_ptr()
    slots.hand_back(4)
    smaller, slot = slots.take((1, 4, 4, 3), torch.uint8)
    assert slot == 4 and smaller.data_ptr() == taken[1][0].data_ptr() and smaller.shape == (1, 4, 4, 3)
    slots.hand_back(4)
    larger, slot = slots.take((3, 4, 4, 3), torch.uint8)
    assert slot == 4 and larger.shape == (3, 4, 4, 3) and larger.untyped_storage().nbytes() >= 3 * 48
    assert larger.untyped_storage().data_ptr() not in addresses
    slots.hand_back(-1)  # a fresh buffer has no slot to hand back
    assert slots.lent.tolist() == [0, 0, 0, 1, 1, 1]
    # the flags travel to a worker process, the buffers stay with the worker that made them
    copy = pickle.loads(pickle.dumps(slots))
    assert copy._buffers == {} and copy.lent.tolist() == slots.lent.tolist() and len(slots._buffers) == 3
    # outside a worker: always a fresh buffer
    monkeypatch.setattr(handover, "get_worker_info", lambda: None)
    assert slots.take((2, 4, 4, 3), torch.uint8)[1] == -1


def test_batches_held_by_the_consumer_stay_as_they_were(tmp_path, monkeypatch):
    """Two persistent workers over three epochs, every batch kept until the end (as a consumer may): each
    equals, bit for bit, what the training process computes itself, and the workers made a buffer per
    slot, not one per batch (a count shared with the worker processes)."""
    path, labels = _dataset(tmp_path)
    made = torch.zeros(1, dtype=torch.int64).share_memory_()
    fresh = handover.batch_buffer

    def counted(shape, dtype=torch.float32):
        made.add_(1)
        return fresh(shape, dtype)

    monkeypatch.setattr(handover, "batch_buffer", counted)  # the workers fork with it
    batches = TrainBatches(path, labels, batch_size=2, crop_size=8, seed=5, pca_std=0.1)
    reference = TrainBatches(path, labels, batch_size=2, crop_size=8, seed=5, pca_std=0.1)
    loader = make_loader(batches, 2, torch.device("cpu"))
    assert batches.slots is not None and len(batches.slots.lent) == 2 * HELD_BY_A_WORKER
    kept = {}
    for epoch in (1, 2, 3):
        batches.set_epoch(epoch)
        kept[epoch] = list(loader)
    assert made.item() <= 2 * HELD_BY_A_WORKER < 3 * len(batches)  # 60 batches
    for epoch, got in kept.items():
        reference.set_epoch(epoch)
        assert len(got) == len(reference) == 20
        for b, batch in enumerate(got):
            assert batch.slot == -1  # handed back
            for have, want in zip(batch, reference[reference.key(b)]):
                torch.testing.assert_close(have, want, rtol=0, atol=0)


def test_an_iteration_left_half_way_leaves_the_next_right(tmp_path):
    """Batches made but never taken (an epoch stopped after 3 batches, again and again) keep their slots
    lent: the workers fall back to fresh buffers and the next full epoch is still exact."""
    path, labels = _dataset(tmp_path)
    batches = TrainBatches(path, labels, batch_size=2, crop_size=8, seed=1, pca_std=0.1)
    reference = TrainBatches(path, labels, batch_size=2, crop_size=8, seed=1, pca_std=0.1)
    loader = make_loader(batches, 2, torch.device("cpu"))
    for epoch in range(1, 6):
        batches.set_epoch(epoch)
        for b, _ in enumerate(loader):
            if b == 2:
                break
    batches.set_epoch(6), reference.set_epoch(6)
    got = list(loader)
    assert len(got) == 20
    for b, batch in enumerate(got):
        for have, want in zip(batch, reference[reference.key(b)]):
            torch.testing.assert_close(have, want, rtol=0, atol=0)


def test_float_inputs_and_loaders_without_workers_use_no_slots(tmp_path):
    """Slots hold uint8 pixels or files sent on as they are: not the float inputs made in the workers (the
    CPU's host pipeline), and nothing where no worker sends anything."""
    from alexnet.data.augment import Augmentation
    path, labels = _dataset(tmp_path)
    mean = np.zeros((10, 10, 3), np.float32)
    augmentation = Augmentation(mean, np.ones(3, np.float32), np.eye(3, dtype=np.float32), 8, "aligned", "cpu")
    floats = TrainBatches(path, labels, 2, 8, seed=1, pca_std=0.1, augmentation=augmentation)
    make_loader(floats, 2, torch.device("cpu"))
    crops = TrainBatches(path, labels, 2, 8, seed=1, pca_std=0.1)
    make_loader(crops, 0, torch.device("cpu"))
    assert floats.slots is None and crops.slots is None


@pytest.mark.skipif(not torch.cuda.is_available(), reason="pinned memory needs CUDA")
@pytest.mark.parametrize("slots", ["reused", "none free"])
def test_batches_for_a_gpu_come_pinned_and_exact(tmp_path, monkeypatch, slots):
    """Pinned whether a batch came in a reused slot or, none being free, in a fresh buffer (the loader's
    slots made with none a worker)."""
    if slots == "none free":
        monkeypatch.setattr(loader_module, "HELD_BY_A_WORKER", 0)
    path, labels = _dataset(tmp_path)
    batches = TrainBatches(path, labels, batch_size=2, crop_size=8, seed=5, pca_std=0.1)
    reference = TrainBatches(path, labels, batch_size=2, crop_size=8, seed=5, pca_std=0.1)
    loader = make_loader(batches, 2, torch.device("cuda"))
    assert len(batches.slots.lent) == (0 if slots == "none free" else 2 * HELD_BY_A_WORKER)
    batches.set_epoch(1), reference.set_epoch(1)
    got = list(loader)
    for b, batch in enumerate(got):
        assert all(v.is_pinned() for v in batch if isinstance(v, torch.Tensor))
        for have, want in zip(batch, reference[reference.key(b)]):
            torch.testing.assert_close(have, want, rtol=0, atol=0)
    evaluated = list(make_loader(EvalBatches(path, labels, 2), 2, torch.device("cuda")))
    for b, batch in enumerate(evaluated):
        assert batch.images.is_pinned() and batch.labels.is_pinned()
        torch.testing.assert_close(batch.images, EvalBatches(path, labels, 2)[b].images, rtol=0, atol=0)


def test_a_batchs_small_fields_travel_as_arrays(tmp_path):
    """In a worker the loader's collate_fn turns the small fields into numpy arrays (inside the batch's
    message, no shared-memory file each); the loader's iteration gives tensors again, equal to the batch
    built in this process."""
    from alexnet.data.handover import SENT_AS_ARRAYS, as_arrays
    path, labels = _dataset(tmp_path)
    batches = TrainBatches(path, labels, batch_size=2, crop_size=8, seed=5, pca_std=0.1)
    batches.set_epoch(1)
    sent = as_arrays(batches[batches.key(0)])
    assert {"labels", "corners", "flips", "alphas"} <= set(SENT_AS_ARRAYS)
    assert all(isinstance(getattr(sent, name), np.ndarray) for name in ("labels", "corners", "flips", "alphas"))
    assert isinstance(sent.crops, torch.Tensor)
    loader = make_loader(batches, 2, torch.device("cpu"))
    for b, batch in enumerate(loader):
        want = batches[batches.key(b)]
        for name in ("labels", "corners", "flips", "alphas", "crops"):
            have = getattr(batch, name)
            assert isinstance(have, torch.Tensor) and have.dtype == getattr(want, name).dtype
            torch.testing.assert_close(have, getattr(want, name), rtol=0, atol=0)


def _jpeg_store(tmp_path, count=40, size=16):
    """JPEG storage as `prepare` writes it: one shard, an index of (shard, offset, length, CRC-32)."""
    import zlib
    from alexnet.data.stores import JpegStore, encode_jpeg
    rng = np.random.default_rng(4)
    files = [encode_jpeg(np.repeat(np.repeat(rng.integers(0, 256, (4, 4, 3), dtype=np.uint8), 4, 0), 4, 1))
             for _ in range(count)]
    shard = tmp_path / "train_images.000.jpgs"
    shard.write_bytes(b"".join(files))
    offsets = np.cumsum([0] + [len(f) for f in files[:-1]])
    index = np.array([[0, o, len(f), zlib.crc32(f)] for o, f in zip(offsets, files)], np.int64)
    return JpegStore([shard], index, size)


@pytest.mark.parametrize("pipeline", ["device", "nvjpeg"])
def test_the_other_pipelines_reuse_slots_and_stay_exact(tmp_path, pipeline):
    """Whole stored images (device) and JPEG files (nvjpeg, of varying length) go into reused slots too:
    held by the consumer over three epochs, each batch equals the one built in this process."""
    path, labels = _dataset(tmp_path)
    store = path if pipeline == "device" else _jpeg_store(tmp_path)
    field = "images" if pipeline == "device" else "encoded"
    batches = TrainBatches(store, labels, batch_size=2, crop_size=8, seed=5, pca_std=0.1, pipeline=pipeline)
    reference = TrainBatches(store, labels, batch_size=2, crop_size=8, seed=5, pca_std=0.1, pipeline=pipeline)
    loader = make_loader(batches, 2, torch.device("cpu"))
    assert batches.slots is not None
    kept = {}
    for epoch in (1, 2, 3):
        batches.set_epoch(epoch)
        kept[epoch] = list(loader)
    for epoch, got in kept.items():
        reference.set_epoch(epoch)
        for b, batch in enumerate(got):
            want = reference[reference.key(b)]
            assert batch.slot == -1 and getattr(batch, field) is not None
            for have, expected in zip(batch, want):
                torch.testing.assert_close(have, expected, rtol=0, atol=0)


@pytest.mark.parametrize("storage", ["raw", "jpeg"])
def test_evaluation_batches_come_through_slots_exact(tmp_path, monkeypatch, storage):
    """Whole images for evaluation (validation during training, `evaluate`) travel as training's do: read
    straight into a worker's reused slot, labels as arrays. Held by the consumer, every batch equals the
    one read in this process, and the workers made a buffer per slot, not one per batch."""
    path, labels = _dataset(tmp_path)
    store = path if storage == "raw" else _jpeg_store(tmp_path)
    made = torch.zeros(1, dtype=torch.int64).share_memory_()
    fresh = handover.batch_buffer

    def counted(shape, dtype=torch.float32):
        made.add_(1)
        return fresh(shape, dtype)

    monkeypatch.setattr(handover, "batch_buffer", counted)
    slots_seen, delivered = [], loader_module.delivered

    def watched(sent, slots, pin):
        def tap():
            for batch in sent:
                slots_seen.append(batch.slot)
                yield batch
        return delivered(tap(), slots, pin)

    monkeypatch.setattr(loader_module, "delivered", watched)
    batches, reference = EvalBatches(store, labels, 2), EvalBatches(store, labels, 2)
    got = list(make_loader(batches, 2, torch.device("cpu")))
    assert len(got) == len(reference) == 20 and all(slot >= 0 for slot in slots_seen) and len(slots_seen) == 20
    assert made.item() <= 2 * HELD_BY_A_WORKER < len(got)
    for b, batch in enumerate(got):
        want = reference[b]
        assert batch.slot == -1 and want.slot == -1  # handed back; read in this process: no slot
        torch.testing.assert_close(batch.images, want.images, rtol=0, atol=0)
        torch.testing.assert_close(batch.labels, want.labels, rtol=0, atol=0)


def test_a_stored_jpeg_of_another_size_is_named(tmp_path):
    """Whole images are decoded straight into the batch: a stored JPEG of another size than the dataset's
    (a file changed with its checksum) is named in one line, where it gave a broadcasting error."""
    from alexnet.errors import AlexNetError
    for declared in (20, 12):
        store = _jpeg_store(tmp_path, count=3)
        store.size = declared
        with pytest.raises(AlexNetError, match=r"train_images.000.jpgs: image 0 is corrupt \(it (decodes to "
                                               rf"16x16x3 pixels, not {declared}x{declared}x3|does not decode)"):
            store.read(np.array([0, 1]))
        with pytest.raises(AlexNetError, match="image 2 is corrupt"):  # and cropped for the host pipeline
            store.crops(np.array([2]), np.array([[0, 0]]), 8)


SPAWNED = """
import multiprocessing, sys
import numpy as np, torch
import alexnet.data.loader as loader
multiprocessing.set_start_method(sys.argv[1], force=True)
slots_seen = []
delivered = loader.delivered
def watched(batches, slots, pin):
    def tap():
        for batch in batches:
            slots_seen.append(batch.slot)
            yield batch
    return delivered(tap(), slots, pin)
loader.delivered = watched
if __name__ == "__main__":
    labels = np.arange(40) % 4
    batches = loader.TrainBatches(sys.argv[2], labels, 2, 8, seed=5, pca_std=0.1)
    reference = loader.TrainBatches(sys.argv[2], labels, 2, 8, seed=5, pca_std=0.1)
    kept = {}
    it = loader.make_loader(batches, 2, torch.device("cpu"))
    for epoch in (1, 2):
        batches.set_epoch(epoch)
        kept[epoch] = list(it)
    for epoch, got in kept.items():
        reference.set_epoch(epoch)
        for b, batch in enumerate(got):
            for have, want in zip(batch, reference[reference.key(b)]):
                torch.testing.assert_close(have, want, rtol=0, atol=0)
    print(len(slots_seen), sum(slot >= 0 for slot in slots_seen))
"""


@pytest.mark.parametrize("method", ["forkserver", "spawn"])
def test_slots_work_with_every_start_method(tmp_path, method):
    """Python 3.14 starts DataLoader workers with forkserver on Linux, where the dataset (and its slots'
    flags) is pickled to each worker: the flags must stay shared, or every batch after the first few would
    go into a fresh buffer; and every batch stays exact."""
    import subprocess
    import sys
    path, _ = _dataset(tmp_path)
    script = tmp_path / "spawned.py"
    script.write_text(SPAWNED)
    done = subprocess.run([sys.executable, str(script), method, path], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    batches, in_slots = map(int, done.stdout.split())
    assert batches == in_slots == 40
