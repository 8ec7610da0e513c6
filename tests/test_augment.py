"""Crops, reflections, ten patches, colour noise and mean subtraction, against numpy on the same pixels."""

import numpy as np
import pytest
import torch

from alexnet.data.augment import (Augmentation, EvalViews, crop_size_for, pca_shift, sample_augmentation,
                                  ten_crop_views)
from alexnet.data.loader import EvalBatches, TrainBatches, make_loader


def test_crop_size_is_seven_eighths():
    assert crop_size_for(256, 7 / 8) == 224
    assert crop_size_for(32, 7 / 8) == 28
    assert crop_size_for(64, 7 / 8) == 56


def test_random_crops_cover_every_position_and_reflect_half():
    seen_y, seen_x, flips = set(), set(), 0
    for i in range(3000):
        y, x, f, a = sample_augmentation(0, 1, i, 256, 224, 0.1)
        assert 0 <= y <= 32 and 0 <= x <= 32
        seen_y.add(y), seen_x.add(x)
        flips += f
    assert seen_y == set(range(33)) and seen_x == set(range(33))  # 33 x 33 x 2 = 2178 variants
    assert 1350 < flips < 1650
    # a different seed, epoch or index gives different draws; the same ones give the same
    assert sample_augmentation(0, 1, 5, 256, 224, .1)[:3] == sample_augmentation(0, 1, 5, 256, 224, .1)[:3]
    draws = {sample_augmentation(s, e, 5, 256, 224, .1)[:2] for s, e in ((0, 1), (1, 1), (0, 2))}
    assert len(draws) == 3


def test_ten_views_are_corners_centre_and_reflections():
    views = ten_crop_views(256, 224)
    assert views[:5] == [(0, 0, False), (0, 32, False), (32, 0, False), (32, 32, False), (16, 16, False)]
    assert views[5:] == [(y, x, True) for y, x, _ in views[:5]]


def test_pca_shift_is_the_papers_sum():
    rng = np.random.default_rng(0)
    vecs, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    vals = np.array([0.2, 0.02, 0.005])
    alphas = rng.normal(0, 0.1, (4, 3))
    # [p1 p2 p3][a1 l1, a2 l2, a3 l3]^T, term by term
    want = np.stack([sum(alphas[b, i] * vals[i] * vecs[:, i] for i in range(3)) for b in range(4)])
    np.testing.assert_allclose(pca_shift(alphas, vals, vecs), want, rtol=1e-12)


def _write_array(path, array):
    np.save(path, array)
    return path


def test_train_batches_crop_exact_pixels(tmp_path):
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (10, 16, 16, 3), dtype=np.uint8)
    path = _write_array(tmp_path / "x.npy", images)
    labels = np.arange(10) % 3
    batches = TrainBatches(path, labels, batch_size=4, crop_size=12, seed=7, pca_std=0.1)
    batches.set_epoch(3)
    order = np.random.default_rng((7, 3)).permutation(10)
    seen = []
    for b in range(len(batches)):
        batch = batches[batches.key(b)]
        crops, y, corners, flips, alphas = batch.crops, batch.labels, batch.corners, batch.flips, batch.alphas
        assert batch.inputs is None  # no augmentation given: the float work is left to the training device
        for i in range(len(y)):
            index = order[b * 4 + i]
            yy, xx, f, a = sample_augmentation(7, 3, int(index), 16, 12, 0.1)
            want = images[index, yy:yy + 12, xx:xx + 12]
            want = want[:, ::-1] if f else want
            np.testing.assert_array_equal(crops[i].numpy(), want)
            assert y[i] == labels[index] and tuple(corners[i].tolist()) == (yy, xx) and bool(flips[i]) == f
            np.testing.assert_array_equal(alphas[i].numpy(), a)
            seen.append(int(index))
    assert sorted(seen) == list(range(10))  # every image exactly once per epoch


def test_persistent_workers_follow_the_epoch(tmp_path):
    """One loader (two worker processes kept across epochs) yields, epoch after epoch, exactly the
    batches that the main process computes after set_epoch, including a change of pca_std."""
    images = np.random.default_rng(2).integers(0, 256, (11, 10, 10, 3), dtype=np.uint8)
    path = _write_array(tmp_path / "x.npy", images)
    labels = np.arange(11) % 4
    batches = TrainBatches(path, labels, batch_size=3, crop_size=8, seed=5, pca_std=0.1)
    reference = TrainBatches(path, labels, batch_size=3, crop_size=8, seed=5, pca_std=0.1)
    loader = make_loader(batches, 2, torch.device("cpu"))
    for epoch, pca in ((1, 0.1), (2, 0.1), (3, 0.0)):
        batches.set_epoch(epoch, pca)
        reference.set_epoch(epoch, pca)
        got = list(loader)
        assert len(got) == len(reference) == 4
        for b, batch in enumerate(got):
            for have, want in zip(batch, reference[reference.key(b)]):
                torch.testing.assert_close(have, want, rtol=0, atol=0)


def _stats(rng):
    vecs, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    return np.array([0.05, 0.01, 0.002], np.float32), vecs.astype(np.float32)


def test_preprocessor_train_batch_matches_numpy():
    rng = np.random.default_rng(2)
    mean = rng.uniform(0, 255, (16, 16, 3)).astype(np.float32)
    vals, vecs = _stats(rng)
    images = rng.integers(0, 256, (3, 16, 16, 3), dtype=np.uint8)
    corners = np.array([[0, 0], [4, 1], [2, 4]])
    flips = np.array([False, True, True])
    alphas = rng.normal(0, 0.1, (3, 3)).astype(np.float32)
    crops = np.stack([images[i, y:y + 12, x:x + 12][:, ::-1] if f else images[i, y:y + 12, x:x + 12]
                      for i, ((y, x), f) in enumerate(zip(corners, flips))])
    for mode in ("aligned", "center"):
        pre = Augmentation(mean, vals, vecs, 12, mode)
        got = pre.train_batch(torch.from_numpy(crops), torch.from_numpy(corners), torch.from_numpy(flips),
                              torch.from_numpy(alphas)).numpy()
        for i, ((y, x), f) in enumerate(zip(corners, flips)):
            # the paper: subtract the mean from the whole image, then crop and reflect
            centred = images[i].astype(np.float64) - mean if mode == "aligned" else None
            if mode == "aligned":
                patch = centred[y:y + 12, x:x + 12]
                patch = patch[:, ::-1] if f else patch
            else:  # the original code: the crop minus the centre crop of the mean
                patch = crops[i].astype(np.float64) - mean[2:14, 2:14]
            shift = 255.0 * (vecs.astype(np.float64) @ (alphas[i] * vals))
            want = (patch + shift).transpose(2, 0, 1)
            np.testing.assert_allclose(got[i], want, rtol=0, atol=2e-4)
        # the device pipeline: the same input from whole stored images, cropped and reflected in one gather,
        # also from a decoder's CHW output seen as HWC
        for stored in (torch.from_numpy(images), torch.from_numpy(images.transpose(0, 3, 1, 2).copy()).permute(0, 2, 3, 1)):
            whole = pre.train_batch_from_stored(stored, torch.from_numpy(corners), torch.from_numpy(flips),
                                                torch.from_numpy(alphas))
            assert torch.equal(whole, torch.from_numpy(got))


def test_test_views_match_numpy(tmp_path):
    rng = np.random.default_rng(3)
    mean = rng.uniform(0, 255, (16, 16, 3)).astype(np.float32)
    vals, vecs = _stats(rng)
    images = rng.integers(0, 256, (2, 16, 16, 3), dtype=np.uint8)
    pre = EvalViews(mean, 12, "aligned")
    views = ten_crop_views(16, 12)
    outs = list(pre(torch.from_numpy(images), views))
    assert len(outs) == 10
    for out, (y, x, f) in zip(outs, views):
        centred = images.astype(np.float64) - mean
        want = centred[:, y:y + 12, x:x + 12]
        want = want[:, :, ::-1] if f else want
        np.testing.assert_allclose(out.numpy(), want.transpose(0, 3, 1, 2), atol=1e-4)
    # the corners really are the corners
    assert views[3] == (4, 4, False)
    path = _write_array(tmp_path / "e.npy", images)
    x = EvalBatches(path, np.array([1, 0]), 8)[0].images
    np.testing.assert_array_equal(x.numpy(), images)


@pytest.mark.parametrize("n,batch,world", [(23, 4, 3), (10, 4, 2), (5, 4, 4), (8, 2, 1)])
def test_sharded_batches_cover_each_image_once(tmp_path, n, batch, world):
    rng = np.random.default_rng(2)
    images = rng.integers(0, 256, (n, 8, 8, 3), dtype=np.uint8)
    path = _write_array(tmp_path / "x.npy", images)
    labels = np.arange(n)  # label = index, so a batch says which images it holds
    single = TrainBatches(path, labels, batch * world, 6, seed=3, pca_std=0.1)
    single.set_epoch(2)
    seen_train, seen_eval = [], []
    lengths = set()
    for rank in range(world):
        shard = TrainBatches(path, labels, batch, 6, seed=3, pca_std=0.1, rank=rank, world_size=world)
        shard.set_epoch(2)
        evals = EvalBatches(path, labels, batch, rank=rank, world_size=world)
        lengths.add((len(shard), len(evals)))
        for b in range(len(shard)):
            part, whole = shard[shard.key(b)], single[single.key(b)]  # whole: the global batch in one process
            crops, y, whole_crops, whole_y = part.crops, part.labels, whole.crops, whole.labels
            assert len(y) <= batch
            for i, index in enumerate(y.tolist()):
                j = whole_y.tolist().index(index)
                np.testing.assert_array_equal(crops[i].numpy(), whole_crops[j].numpy())  # same augmentation
            seen_train += y.tolist()
            x, y_eval = evals[b].images, evals[b].labels
            np.testing.assert_array_equal(x.numpy(), images[y_eval.numpy()])
            seen_eval += y_eval.tolist()
    assert len(lengths) == 1  # every rank takes the same number of steps
    assert sorted(seen_train) == list(range(n)) and sorted(seen_eval) == list(range(n))


def test_batched_draws_equal_single_draws_and_have_the_paper_distributions():
    from alexnet.data.augment import sample_augmentations
    indices = np.array([5, 0, 99, 12345678, 7])
    corners, flips, alphas = sample_augmentations(3, 2, indices, 256, 224, 0.1)
    for i, index in enumerate(indices):  # an image's draws do not depend on its batch
        y, x, f, a = sample_augmentation(3, 2, int(index), 256, 224, 0.1)
        assert (y, x, f) == (corners[i, 0], corners[i, 1], flips[i])
        np.testing.assert_array_equal(a, alphas[i])
    corners, flips, alphas = sample_augmentations(0, 1, np.arange(200_000), 256, 224, 0.1)
    counts = np.bincount(corners.ravel(), minlength=33)
    assert len(counts) == 33 and counts.min() > 0.9 * counts.mean()  # uniform over the 33 positions
    assert abs(flips.mean() - 0.5) < 0.005
    a = alphas.astype(np.float64).ravel()
    assert abs(a.mean()) < 1e-3 and abs(a.std() - 0.1) < 1e-3                 # N(0, 0.1)
    assert abs(np.mean(np.abs(a) < 0.1) - 0.6827) < 0.005                     # one-sigma mass of a normal
    assert abs(np.corrcoef(alphas[:, 0], alphas[:, 1])[0, 1]) < 0.01            # independent per channel
    assert not np.any(sample_augmentations(0, 1, np.arange(10), 256, 224, 0.0)[2])  # no noise when off
