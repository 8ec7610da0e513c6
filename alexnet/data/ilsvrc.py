"""ILSVRC-2012 and ILSVRC-2010 as distributed, read in place (tars or extracted folders).

What a user may have in the source folder (any mix; archives are read, never extracted):

    ILSVRC2012_img_train.tar   or  train/<wnid>/*.JPEG      one inner tar or folder per class
    ILSVRC2012_img_val.tar     or  val/*.JPEG               flat, labelled by one of:
                                   val/<wnid>/*.JPEG        already sorted into class folders
    ILSVRC2012_devkit_t12.tar.gz or ILSVRC2012_devkit_t12/  data/meta.mat (ILSVRC ids -> WordNet ids)
                                                            + data/ILSVRC2012_validation_ground_truth.txt
    LOC_val_solution.csv (or --val-labels FILE.csv)         image id -> synset
    LOC_synset_mapping.txt or synset_words.txt              synset -> human-readable name
    ILSVRC2010_img_test.tar / test/ + ILSVRC2010_test_ground_truth.txt   (2010 only: test labels)

Classes are the WordNet ids of the training set in sorted order (as an image-folder tree of the
same data would give). Reading `meta.mat` needs SciPy (`pip install scipy`); the CSV route does not.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

from ..errors import AlexNetError
from .archives import ImageRef, list_tar_images, read_member
from .imagefolder import IMAGE_EXTENSIONS, image_files, list_classes

WNID = re.compile(r"^n\d{8}$")
YEARS = ("2012", "2010")


def detect_year(src: Path) -> str | None:
    """'2012' or '2010' when `src` holds ILSVRC files of that year, else None."""
    names = [p.name for p in src.iterdir()] if src.is_dir() else []
    for year in YEARS:
        if any(n.startswith(f"ILSVRC{year}") for n in names):
            return year
    if any(n.startswith("LOC_") for n in names):
        return "2012"  # the Kaggle distribution of ILSVRC-2012
    return None


def image_number(name: str) -> int:
    """ILSVRC2012_val_00000123.JPEG -> 123 (the line of the ground-truth file, counting from 1)."""
    match = re.search(r"(\d+)$", Path(name).stem)
    if not match:
        raise AlexNetError(f"{name}: cannot find the image number in the file name")
    return int(match.group(1))


def read_synset_words(path: Path) -> dict[str, str]:
    """'n01440764 tench, Tinca tinca' lines -> {wnid: name}."""
    words = {}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        wnid, _, name = line.strip().partition(" ")
        if WNID.match(wnid):
            words[wnid] = name.strip()
    return words


def read_val_csv(path: Path) -> dict[str, str]:
    """Image id -> wnid from a CSV whose first column is the image id and whose second column starts
    with the synset (LOC_val_solution.csv: 'ILSVRC2012_val_00008726,n02119789 255 142 454 329 ...')."""
    labels = {}
    with open(path, newline="", encoding="utf-8", errors="replace") as f:
        for row in csv.reader(f):
            if len(row) < 2 or not row[1].split():
                continue
            wnid = row[1].split()[0]
            if WNID.match(wnid):
                labels[Path(row[0].strip()).stem] = wnid
    if not labels:
        raise AlexNetError(f"{path}: no 'image id, synset' rows found")
    return labels


def parse_meta_mat(data: bytes, where: str, year: str) -> tuple[dict[int, str], dict[str, str]]:
    """{ILSVRC id: wnid} of the leaf classes and {wnid: words} from a devkit's meta.mat."""
    try:
        from scipy.io import loadmat
    except ImportError:
        raise AlexNetError(f"{where}: reading the devkit's meta.mat needs SciPy (pip install scipy), "
                           "or give the validation labels as a CSV with --val-labels") from None
    try:
        synsets = loadmat(io.BytesIO(data))["synsets"].ravel()
        ids: dict[int, str] = {}
        words: dict[str, str] = {}
        for s in synsets:
            wnid = str(s["WNID"].ravel()[0])
            ilsvrc_id = int(s[f"ILSVRC{year}_ID"].ravel()[0])
            children = int(s["num_children"].ravel()[0]) if "num_children" in s.dtype.names else 0
            if children == 0:
                ids[ilsvrc_id] = wnid
            if "words" in s.dtype.names:
                words[wnid] = str(s["words"].ravel()[0])
    except Exception as exc:  # a malformed .mat raises many types; all mean "not a devkit meta.mat"
        raise AlexNetError(f"{where}: not an ILSVRC{year} devkit meta.mat ({type(exc).__name__}: {exc})") from None
    return ids, words


def _devkit_file(src: Path, year: str, name: str) -> tuple[bytes, str] | None:
    """`name` (e.g. data/meta.mat) from a devkit folder or archive in `src`."""
    for folder in sorted(src.glob(f"ILSVRC{year}_devkit*")):
        if folder.is_dir():
            hits = sorted(folder.rglob(Path(name).name))
            if hits:
                return hits[0].read_bytes(), str(hits[0])
        elif folder.name.endswith((".tar.gz", ".tgz", ".tar")):
            data = read_member(folder, name)
            if data is not None:
                return data, f"{folder}:{name}"
    return None


def _ground_truth_labels(src: Path, year: str, split: str) -> dict[int, str] | None:
    """{image number: wnid} from the devkit ground truth (val) or the separate test file (2010)."""
    fname = f"ILSVRC{year}_{'validation' if split == 'val' else 'test'}_ground_truth.txt"
    found = _devkit_file(src, year, f"data/{fname}")
    if found is None and (src / fname).is_file():
        found = (src / fname).read_bytes(), str(src / fname)
    if found is None:
        return None
    meta = _devkit_file(src, year, "data/meta.mat")
    if meta is None:
        raise AlexNetError(f"{found[1]}: found, but no devkit meta.mat to map its ids to synsets "
                           f"(put ILSVRC{year}_devkit*.tar.gz or its folder in {src})")
    ids, _ = parse_meta_mat(*meta, year)
    lines = found[0].decode(errors="replace").split()
    try:
        return {i + 1: ids[int(v)] for i, v in enumerate(lines)}
    except (KeyError, ValueError) as exc:
        raise AlexNetError(f"{found[1]}: id {exc} is not a class of meta.mat") from None


def class_words(src: Path, year: str) -> dict[str, str]:
    """Human-readable names, from a synset list file or the devkit, where available."""
    for name in ("LOC_synset_mapping.txt", "synset_words.txt", "synsets.txt"):
        if (src / name).is_file():
            return read_synset_words(src / name)
    meta = _devkit_file(src, year, "data/meta.mat")
    if meta is not None:
        try:
            return parse_meta_mat(*meta, year)[1]
        except AlexNetError:
            return {}
    return {}


def _images(src: Path, year: str, split: str) -> list[tuple[tuple[str, ...], ImageRef]] | None:
    """(folder parts, ref) of every image of `split`, from its tar or its folder; None if absent."""
    tar = src / f"ILSVRC{year}_img_{split}.tar"
    if tar.is_file():
        return list_tar_images(tar, IMAGE_EXTENSIONS)
    folder = src / split
    if not folder.is_dir():
        return None
    refs = [((), ImageRef(str(p), str(p))) for p in image_files(folder)]
    for cls in list_classes(folder):
        refs.extend(((cls,), ImageRef(str(p), str(p))) for p in image_files(folder / cls))
    return refs


def ilsvrc_splits(src: Path, year: str, val_labels: Path | None = None
                  ) -> tuple[list[str], dict[str, str], dict[str, list[tuple[ImageRef, int]]]]:
    """Classes (sorted wnids), their names, and the labelled images of each split found."""
    train = _images(src, year, "train")
    if not train:
        raise AlexNetError(f"{src}: no ILSVRC{year}_img_train.tar and no train/<wnid>/ folders with images")
    unlabelled = [ref.name for parts, ref in train if not parts]
    if unlabelled:
        raise AlexNetError(f"{unlabelled[0]}: training image outside a class folder or inner tar")
    classes = sorted({parts[-1] for parts, _ in train})
    label_of = {c: i for i, c in enumerate(classes)}
    splits = {"train": [(ref, label_of[parts[-1]]) for parts, ref in train]}

    csv_labels = read_val_csv(val_labels) if val_labels else (
        read_val_csv(src / "LOC_val_solution.csv") if (src / "LOC_val_solution.csv").is_file() else None)
    for split in ("val", "test"):
        found = _images(src, year, split)
        if found is None:
            if split == "val":
                raise AlexNetError(f"{src}: no ILSVRC{year}_img_val.tar and no val/ folder")
            continue
        numbered = None
        items = []
        for parts, ref in found:
            if parts:
                wnid = parts[-1]
            elif split == "val" and csv_labels is not None:
                wnid = csv_labels.get(ref.stem)
            else:
                if numbered is None:
                    numbered = _ground_truth_labels(src, year, split)
                    if numbered is None:
                        raise AlexNetError(
                            f"{src}: the {split} images are not sorted into class folders and no labels were found "
                            f"(give --val-labels FILE.csv, or put the ILSVRC{year} devkit in {src})")
                wnid = numbered.get(image_number(ref.stem))
            if wnid is None:
                raise AlexNetError(f"{ref.name}: no label for this {split} image")
            if wnid not in label_of:
                raise AlexNetError(f"{ref.name}: its class {wnid} is not among the training classes")
            items.append((ref, label_of[wnid]))
        if not items:
            raise AlexNetError(f"{src}: the {split} split has no images")
        splits[split] = items
    words = class_words(src, year)
    return classes, {c: words[c] for c in classes if c in words}, splits
