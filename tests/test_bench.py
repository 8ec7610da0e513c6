"""`alexnet bench data`: runs both pipelines on a prepared dataset and reports (never asserts) speed."""

import json

import pytest

from alexnet.cli.main import main


def test_bench_data_reports_both_pipelines(shapes_data, tmp_path, capsys):
    record = tmp_path / "BENCH.md"
    code = main(["bench", "data", "--data", str(shapes_data), "--images", "192", "--batch-size", "32",
                 "--workers", "0", "--json", "--record", str(record), "--pipelines", "host", "device", "nvjpeg"])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result) == {"images_per_second", "baseline_images_per_second", "workers", "runs"}
    assert result["images_per_second"] > 0 and result["baseline_images_per_second"] > 0 and result["workers"] == 0
    # nvjpeg cannot run on raw storage on the CPU: left out, said so, not failed
    assert [(r["storage"], r["pipeline"]) for r in result["runs"]] == [("raw", "host"), ("raw", "device")]
    assert result["runs"][0]["data"] == str(shapes_data)
    text = record.read_text()
    assert "input pipeline" in text and "alexnet " in text and "raw storage" in text and "vs reference" in text
    assert "device pipeline" in text


def test_a_record_file_that_is_not_text_is_refused_before_the_benchmark_runs(tmp_path, capsys, monkeypatch):
    import alexnet.bench.train as bench_train

    monkeypatch.setattr(bench_train, "bench_train", lambda *a, **k: 1 / 0)  # must not be reached
    binary = tmp_path / "weights.bin"
    binary.write_bytes(bytes(range(256)))
    for record, says in ((binary, "not a text file (UTF-8)"), (tmp_path, "not a regular file")):
        with pytest.raises(SystemExit) as exited:
            main(["bench", "train", "--preset", "small", "--device", "cpu", "--record", str(record)])
        assert exited.value.code == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and f"argument --record: {record}: {says}" in err[0], err
    assert binary.read_bytes() == bytes(range(256))


def test_bench_train_reports_ours_and_reference(capsys):
    code = main(["bench", "train", "--preset", "small", "--device", "cpu", "--batch-size", "4", "--steps", "1",
                 "--json"])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result) == {"images_per_second", "baseline_images_per_second", "device", "batch_size"}
    assert result["device"] == "cpu" and result["batch_size"] == 4
    assert result["images_per_second"] > 0 and result["baseline_images_per_second"] > 0


def test_forward_macs_of_the_paper_network():
    from alexnet import build_model
    from alexnet.bench.train import forward_macs
    # Per layer by hand: conv1 55*55*96*363, conv2 27*27*256*1200, conv3 13*13*384*2304,
    # conv4 13*13*384*1728, conv5 13*13*256*1728, fc 9216*4096 + 4096*4096 + 4096*1000.
    by_hand = (55 * 55 * 96 * 363 + 27 * 27 * 256 * 1200 + 13 * 13 * 384 * 2304 + 13 * 13 * 384 * 1728
               + 13 * 13 * 256 * 1728 + 9216 * 4096 + 4096 * 4096 + 4096 * 1000)
    assert forward_macs(build_model("paper", 1000), 224) == by_hand


def test_bench_prepare_reports_both_sizes(capsys):
    assert main(["bench", "prepare", "--images", "2", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result) == {"500x375", "1600x1200"}
    assert all(v["images_per_second"] > 0 and v["baseline_images_per_second"] > 0 for v in result.values())


def test_bench_data_end_to_end_reports_the_overlap(shapes_data, capsys):
    code = main(["bench", "data", "--data", str(shapes_data), "--images", "96", "--batch-size", "16", "--workers", "0",
                 "--train-preset", "small", "--train-batches", "3", "--pipelines", "host", "device", "--json"])
    assert code == 0
    said = capsys.readouterr()
    result = json.loads(said.out)  # stdout: the JSON object alone; the progress went to stderr
    assert "end to end (device pipeline, loader + small training)" in said.err
    rows = result["end_to_end"]
    assert [r["pipeline"] for r in rows] == ["host", "device"]
    for r in rows:
        assert r["images_per_second"] > 0 and r["step_images_per_second"] > 0 and r["loader_images_per_second"] > 0
        slower = min(r["step_images_per_second"], r["loader_images_per_second"])
        assert abs(r["overlap"] - r["images_per_second"] / slower) < 1e-9


def test_bench_data_times_the_workers_as_a_gpu_machine_runs_them(shapes_data, capsys):
    """With workers on the CPU, the host pipeline is also timed as its workers run for a GPU (uint8 crops,
    the float work left to the device): the per-core rate a GPU machine's CPUs must sustain."""
    code = main(["bench", "data", "--data", str(shapes_data), "--images", "128", "--batch-size", "16",
                 "--workers", "1", "--json"])
    assert code == 0
    runs = json.loads(capsys.readouterr().out)["runs"]
    assert [r["pipeline"] for r in runs] == ["host", "host (uint8, as for a GPU)"]
    assert runs[1]["per_worker"] == runs[1]["images_per_second"] > 0  # one worker


def test_a_loader_figure_from_too_few_images_is_flagged(shapes_data, capsys):
    """The workers' head start (a batch each, made before the clock) over a tenth of the images timed:
    said on stderr, so that a figure like the H200's 149,000 images/s from 1,024 images is not taken
    for a sustained rate. Against the arithmetic: 2 workers x 16 = 32 ahead; 128 - 2 x 16 = 96 timed."""
    from alexnet.bench.data import head_start_note
    assert head_start_note(128, 2, 16, 2).startswith("about 32 images (2 workers x a batch of 16) are made before")
    assert "33% of the 96 timed" in head_start_note(128, 2, 16, 2) and "--images 352 or more" in head_start_note(
        128, 2, 16, 2)
    assert head_start_note(352, 2, 16, 2) is None and head_start_note(351, 2, 16, 2) is not None
    assert head_start_note(10, 0, 16, 2) is None  # no workers, no head start
    code = main(["bench", "data", "--data", str(shapes_data), "--images", "128", "--batch-size", "16",
                 "--workers", "2", "--json"])
    out, err = capsys.readouterr()
    assert code == 0 and json.loads(out)["workers"] == 2
    notes = [line for line in err.splitlines() if line.startswith("note:")]  # beside the progress lines
    assert len(notes) == 1 and notes[0].startswith("note: about 32 images (2 workers x a batch of 16)")


def test_bench_data_uses_trains_worker_count_unless_told(shapes_data, monkeypatch):
    """What `train` would run on that device (the GPU phase's 2026-11-26 figures used 16 workers where
    train's default is 8: the default must be the one timed when no count is given)."""
    from alexnet.bench import data as bench
    asked = []
    monkeypatch.setattr(bench, "default_workers", lambda dev: asked.append(dev.type) or 1)
    result = bench.bench_data(shapes_data, images=64, batch_size=16, log=lambda line: None)
    assert asked == ["cpu"] and result["workers"] == 1
    assert bench.bench_data(shapes_data, workers=0, images=64, batch_size=16, log=lambda line: None)["workers"] == 0
    assert asked == ["cpu"]  # a count given is used as given


def test_bench_data_times_trains_feed_unless_told_not_to_stage_ahead(shapes_data, monkeypatch):
    """`bench data` builds train's own input (`TrainingInput`), which on CUDA stages the next batches ahead;
    `--no-ahead` builds it feeding from the training thread, for the pipeline phase's comparison."""
    from alexnet.bench import data as bench
    built = []
    real = bench.TrainingInput
    monkeypatch.setattr(bench, "TrainingInput", lambda *a, **kw: built.append(kw["ahead"]) or real(*a, **kw))
    assert main(["bench", "data", "--data", str(shapes_data), "--images", "64", "--batch-size", "16", "--workers",
                 "0", "--json"]) == 0
    assert main(["bench", "data", "--data", str(shapes_data), "--images", "64", "--batch-size", "16", "--workers",
                 "0", "--json", "--no-ahead"]) == 0
    assert built == [True, False]


def test_bench_data_reads_enough_images_for_a_sustained_rate_by_default(shapes_data):
    """Without --images, enough that the workers' head start moves the figure by a tenth at most (the old
    default of 4,096 with train's 14 CUDA workers would have timed 44% head start), as far as the data holds."""
    from alexnet.bench.data import bench_data, head_start_note, sustained_images
    for workers, batch in [(14, 128), (2, 16), (64, 512), (0, 128)]:
        images = sustained_images(workers, batch, 2)
        assert images >= 4096 and head_start_note(images, workers, batch, 2) is None
    assert sustained_images(14, 128, 2) == 18_176
    result = bench_data(shapes_data, workers=0, batch_size=16, log=lambda line: None)
    assert result["images"] == min(4096, 600)  # the data's 600 training images: all of them
