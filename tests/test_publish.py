"""Publishing a registry version: cards in iMagine's template after a simulated loop round,
the Zenodo deposit's field rules, the dataset zip, and the upload's exact HTTP requests
against a recording server on loopback (Zenodo itself cannot be reached here)."""

import copy
import hashlib
import json
import re
import shutil
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cvat_sdk.auto_annotation
import pytest
import yaml

from imagine_assist.app.main import main
from imagine_assist.checksums import verify_manifest
from imagine_assist.home import Home
from imagine_assist.publish.cards import DATASET_HEADINGS
from imagine_assist.publish.zenodo import check_deposit
from imagine_assist.samples import write_cvat_export

from .fish_tasks import FISH_LABELS, fish_samples
from .test_loop import RecordingClient

REGISTRY_KNOWS = (
    "Training dataset",
    "Data preprocessing",
    "Data splitting",
    "Classes, labels and annotations",
    "Data sources",
    "Data quality",
    "Image resolution",
)
USER_FILLS = {
    "Parameters": "parameters",
    "Spatial coverage": "spatial_coverage",
    "Temporal coverage": "temporal_coverage",
    "Contact information": "contact",
}
METADATA = {
    "creators": [{"name": "Doe, Jane", "affiliation": "Marine Institute", "orcid": ""}],
    "contact": {"name": "Doe, Jane", "email": "jane.doe@example.org", "affiliation": "MI"},
    "keywords": ["OBSEA"],
    "summary": "Fish at <script>alert(1)</script> & friends, 20 m deep.",
    "data_sources": "Fixed camera at 20 m, one frame every 30 minutes.",
    "spatial_coverage": {"place": "OBSEA, Vilanova i la Geltru, Spain", "lat": 41.18, "lon": 1.75},
    "temporal_coverage": {"start": "2023-01-01", "end": "2023-12-31"},
    "parameters": [
        {
            "name": "Abundance of biological entity",
            "uri": "http://vocab.nerc.ac.uk/collection/P01/current/SDBIOL01/",
        }
    ],
}


@pytest.fixture(scope="module")
def loop_round(tmp_path_factory):
    """A simulated loop round (`imagine-assist loop`, cvat-sdk's client stood in for as in
    test_loop): CVAT task 7's corrected export is reviewed, retrained into v1 and promoted."""
    root = tmp_path_factory.mktemp("loop-round")
    samples = fish_samples(24, 90)
    cvat_export = write_cvat_export(root / "cvat-7.zip", samples, FISH_LABELS)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(
            "cvat_sdk.make_client", lambda host, **auth: RecordingClient({7: cvat_export})
        )
        patch.setattr(cvat_sdk.auto_annotation, "annotate_task", lambda *args, **kwargs: None)
        patch.setenv("CVAT_USER", "annotator")
        patch.setenv("CVAT_PASSWORD", "secret")
        argv = ["loop", "fish", "--cvat", "https://cvat.example", "--task", "7"]
        argv += ["--models", str(root / "models"), "--work", str(root / "work")]
        assert main([*argv, "--epochs", "1", "--force"]) == 0
    (export,) = [Path(entry["path"]) for entry in _card(root)["data"]["exports"]]
    boxes = sum(len(sample.objects) for sample in samples)
    return root, export, boxes


def _card(root):
    return json.loads((root / "models" / "fish" / "versions" / "v1" / "card.json").read_text())


def sections(markdown: str) -> dict[str, str]:
    """Heading -> the text under it, up to the next heading."""
    parts = re.split(r"^#{2,3} (.+)$", markdown, flags=re.M)
    return {parts[i].strip(): parts[i + 1].strip() for i in range(1, len(parts), 2)}


def publish_card(root, out, *extra):
    argv = ["publish", "card", "fish", "--models", str(root / "models"), "--out", str(out)]
    return main(argv + list(extra))


def test_card_after_a_loop_round_fills_what_the_registry_knows_and_names_the_rest(
    loop_round, tmp_path, capsys
):
    root, export, boxes = loop_round
    metadata = tmp_path / "absent.yaml"
    assert publish_card(root, tmp_path / "out", "--metadata", str(metadata)) == 0
    out = capsys.readouterr().out
    card = (tmp_path / "out" / "dataset-card.md").read_text()
    found = sections(card)
    assert list(found) == list(DATASET_HEADINGS)
    for heading in REGISTRY_KNOWS:
        assert found[heading] and "Missing" not in found[heading], heading
    for heading, field in USER_FILLS.items():
        assert f"Missing: fill `{field}` in `{metadata}`" in found[heading], heading
        assert f"missing: {field}" in out
    # the facts are the export's: every image and box of the task, by class
    assert "Images: 24 (" in found["Training dataset"]
    assert f"Annotations: {boxes} bounding boxes in 1 class" in found["Training dataset"]
    for label in FISH_LABELS:
        assert f"| {label} |" in found["Classes, labels and annotations"]
    assert export.name in found["Data sources"]
    assert "384 x 288 | 24" in found["Image resolution"]
    model = sections((tmp_path / "out" / "model-card.md").read_text())
    for heading in ("Intended use", "Classes", "Metrics", "Training data", "Limits"):
        assert model[heading], heading
    assert "| mAP50 |" in model["Metrics"] and "bundled" in model["Metrics"]
    # v1 started from the bundled fish model: the real sets it learned from are credited
    assert "DeepFish" in model["Training data"] and "CC BY 4.0" in model["Training data"]
    assert "zenodo would refuse the deposit: creators" in out
    # the training that ran: a CenterNet's own trainer, not the YOLO recipe's ultralytics
    # arguments (mosaic, freeze) it never used; the split the metrics came from
    assert _card(root)["architecture"] == "centernet-mobilenetv3"
    assert "CenterNet fine-tuner" in model["Training"]
    assert "ultralytics arguments" not in model["Training"] and "mosaic" not in card
    split = _card(root)["evaluated_on"]["split"]
    assert (
        "are on the training images" if split == "train" else f"the {split} split gave the"
    ) in found["Data splitting"]


@pytest.mark.slow  # one more training round: the full tier
def test_a_second_version_with_a_fixed_validation_export_is_credited_in_full(loop_round, tmp_path):
    """v2, fine-tuned from v1 with a `--val` export: its card dropped the bundled model's
    CC BY credits (v1 was not followed back to it), and the validation export, though in
    the zip, was in neither card."""
    root, export, _ = loop_round
    models = shutil.copytree(root / "models", tmp_path / "models")
    val = write_cvat_export(tmp_path / "fixed-val.zip", fish_samples(8, 91), FISH_LABELS)
    argv = ["train", "fish", "--from", str(export), "--val", str(val), "--epochs", "1"]
    assert main([*argv, "--force", "--models", str(models), "--work", str(tmp_path / "w")]) == 0
    card = json.loads((models / "fish" / "versions" / "v2" / "card.json").read_text())
    assert card["started_from"] == "v1"
    out = tmp_path / "out"
    argv = ["publish", "card", "fish", "--version", "v2", "--models", str(models)]
    assert main([*argv, "--out", str(out)]) == 0
    dataset = sections((out / "dataset-card.md").read_text())
    assert "`fixed-val.zip`" in dataset["Data sources"]
    assert "(held out: the test split)" in dataset["Data sources"]
    # --val exports are the split the gate measures on: the test split (build_dataset)
    assert (
        "The test split is the 1 held-out export(s) given with `--val`"
        in (dataset["Data splitting"])
    )
    assert "Share: validation 0.3" in dataset["Data splitting"]
    assert card["data"]["split"]["test"] == 8  # the 8 images of fixed-val.zip
    model = sections((out / "model-card.md").read_text())
    assert "DeepFish" in model["Training data"] and "CC BY 4.0" in model["Training data"]
    assert "2 CVAT export(s)" in model["Training data"]


def test_filled_metadata_completes_the_card_and_the_deposit_meets_zenodo_rules(
    loop_round, tmp_path, capsys
):
    root, _, _ = loop_round
    metadata = tmp_path / "fish.yaml"
    metadata.write_text(yaml.safe_dump(METADATA))
    assert publish_card(root, tmp_path / "out", "--metadata", str(metadata)) == 0
    assert "missing" not in capsys.readouterr().out
    card = (tmp_path / "out" / "dataset-card.md").read_text()
    assert "Missing" not in card
    assert "[Abundance of biological entity](http://vocab.nerc.ac.uk/" in card
    assert "2023-01-01 to 2023-12-31" in card and "jane.doe@example.org" in card
    deposit = json.loads((tmp_path / "out" / "zenodo-deposit.json").read_text())
    assert check_deposit(deposit) == []
    metadata_json = deposit["metadata"]
    assert metadata_json["upload_type"] == "dataset"
    assert metadata_json["license"] == "cc-by-4.0" and metadata_json["access_right"] == "open"
    assert metadata_json["communities"] == [{"identifier": "imagine-project"}]
    assert metadata_json["grants"] == [{"id": "10.13039/501100000780::101058625"}]
    assert metadata_json["version"] == "v1"
    assert metadata_json["creators"] == [{"name": "Doe, Jane", "affiliation": "Marine Institute"}]
    assert metadata_json["locations"] == [
        {"place": "OBSEA, Vilanova i la Geltru, Spain", "lat": 41.18, "lon": 1.75}
    ]
    assert metadata_json["dates"] == [
        {"start": "2023-01-01", "end": "2023-12-31", "type": "Collected"}
    ]
    assert {"OBSEA", "fish"} <= set(metadata_json["keywords"])
    description = metadata_json["description"]
    for heading in DATASET_HEADINGS:
        assert re.search(rf"<h[23]>{re.escape(heading)}</h[23]>", description), heading
    assert "<table>" in description and "<script" not in description
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; friends" in description


@pytest.mark.parametrize(
    "change, problem",
    [
        (lambda m: m.pop("title"), "title is required"),
        (lambda m: m.update(upload_type="data"), "upload_type must be one of"),
        (lambda m: m.update(creators=[]), "creators needs at least one"),
        (lambda m: m.update(creators=[{"name": "Jane Doe"}]), "Family name, Given names"),
        (lambda m: m.pop("license"), "license is required when access_right is open"),
        (lambda m: m.update(access_right="public"), "access_right must be one of"),
        (lambda m: m.update(access_right="embargoed"), "embargo_date"),
        (lambda m: m.update(keywords="fish"), "keywords must be a list"),
        (lambda m: m.update(dates=[{"start": "2023-13-01", "type": "Collected"}]), "ISO date"),
        (lambda m: m.update(dates=[{"start": "2023-01-01", "type": "Sampled"}]), "date type"),
        (lambda m: m.update(locations=[{"place": "x", "lat": 95, "lon": 0}]), "lat must be"),
        (lambda m: m.update(communities=["imagine-project"]), "list of objects"),
        (lambda m: m.update(species="fish"), "unknown field 'species'"),
    ],
)
def test_deposit_rules_name_what_zenodo_would_refuse(change, problem):
    valid = {
        "metadata": {
            "upload_type": "dataset",
            "title": "t",
            "creators": [{"name": "Doe, Jane"}],
            "description": "<p>d</p>",
            "access_right": "open",
            "license": "cc-by-4.0",
            "keywords": ["fish"],
        }
    }
    assert check_deposit(valid) == []
    broken = copy.deepcopy(valid)
    change(broken["metadata"])
    assert any(problem in found for found in check_deposit(broken)), check_deposit(broken)


def test_the_dataset_zip_is_the_training_split_with_a_checksum_manifest(loop_round, tmp_path):
    root, _, boxes = loop_round
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "fish-v9-dataset.zip").write_bytes(b"an earlier card's")
    (tmp_path / "out" / "fish-notes.zip").write_bytes(b"the user's")
    assert publish_card(root, tmp_path / "out") == 0
    # one publication per folder: the earlier card's zip goes (upload refuses two), not theirs
    assert sorted(p.name for p in (tmp_path / "out").glob("*.zip")) == [
        "fish-notes.zip",
        "fish-v1-dataset.zip",
    ]
    card = _card(root)
    with zipfile.ZipFile(tmp_path / "out" / "fish-v1-dataset.zip") as archive:
        archive.extractall(tmp_path / "unzipped")
    folder = tmp_path / "unzipped" / "fish-v1"
    assert verify_manifest(folder) == []
    config = yaml.safe_load((folder / "dataset.yaml").read_text())
    # no `path`: ultralytics reads the splits beside dataset.yaml wherever it was unzipped
    assert "path" not in config and config["names"] == dict(enumerate(FISH_LABELS))
    assert all((folder / config[split]).is_dir() for split in ("train", "val"))
    for split, count in card["data"]["split"].items():
        assert len(list((folder / "images" / split).glob("*.jpg"))) == count
    rows = [row.split() for label in folder.glob("labels/*/*.txt") for row in label.open()]
    assert len(rows) == boxes
    assert all(len(row) == 5 and all(0 <= float(v) <= 1 for v in row[1:]) for row in rows)
    (folder / "dataset.yaml").write_text("path: /elsewhere\n")
    assert verify_manifest(folder) == ["changed: dataset.yaml"]


def test_a_moved_export_is_found_in_the_home_or_named_and_found_by_its_checksum(
    loop_round, tmp_path, capsys
):
    root, export, _ = loop_round
    kept = Home.resolve().root / _card(root)["data"]["exports"][0]["stored"]
    assert kept.is_file()  # train keeps every export it learnt from, by content
    moved = tmp_path / "archive" / "renamed.zip"
    moved.parent.mkdir()
    shutil.move(export, moved)
    hidden = kept.with_name("hidden.zip")
    try:
        assert publish_card(root, tmp_path / "out-kept") == 0
        kept.rename(hidden)  # the home's copy gone too: the export is named, --export finds it
        assert publish_card(root, tmp_path / "out") == 2
        assert export.name in capsys.readouterr().err
        assert publish_card(root, tmp_path / "out", "--export", str(moved)) == 0
    finally:
        shutil.move(moved, export)
        if hidden.exists():
            hidden.rename(kept)


# --- upload ---------------------------------------------------------------------------------


class RecordingZenodo(BaseHTTPRequestHandler):
    """Answers as Zenodo's deposit API does, and records each request."""

    requests: list = []
    fail_metadata: bool = False

    def log_message(self, *args):
        pass

    def _answer(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _handle(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.requests.append((self.command, self.path, dict(self.headers), body))
        base = f"http://127.0.0.1:{self.server.server_port}"
        if self.command == "POST" and self.path == "/api/deposit/depositions":
            links = {
                "bucket": f"{base}/api/files/bucket-42",
                "html": f"{base}/deposit/42",
                "publish": f"{base}/api/deposit/depositions/42/actions/publish",
            }
            self._answer(201, {"id": 42, "links": links})
        elif self.command == "DELETE" and self.path.startswith("/api/files/bucket-42/"):
            self.send_response(204)
            self.end_headers()
        elif self.command == "PUT" and self.path.startswith("/api/files/bucket-42/"):
            self._answer(201, {"checksum": "md5:" + hashlib.md5(body).hexdigest()})
        elif self.command == "PUT" and self.path == "/api/deposit/depositions/42":
            if self.fail_metadata:
                errors = [{"field": "metadata.creators", "message": "Missing data."}]
                self._answer(400, {"message": "Validation error.", "errors": errors})
            else:
                self._answer(200, {"id": 42, **json.loads(body)})
        elif self.command == "POST" and self.path.endswith("/actions/publish"):
            self._answer(202, {"id": 42, "doi": "10.5072/zenodo.42"})
        else:
            self._answer(404, {"message": "not found"})

    do_POST = do_PUT = do_GET = do_DELETE = _handle


@pytest.fixture
def zenodo():
    RecordingZenodo.requests = []
    RecordingZenodo.fail_metadata = False
    server = ThreadingHTTPServer(("127.0.0.1", 0), RecordingZenodo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}", RecordingZenodo
    server.shutdown()


@pytest.fixture(scope="module")
def deposit_folder(loop_round, tmp_path_factory):
    root, _, _ = loop_round
    folder = tmp_path_factory.mktemp("deposit")
    metadata = folder / "fish.yaml"
    metadata.write_text(yaml.safe_dump(METADATA))
    assert publish_card(root, folder / "out", "--metadata", str(metadata)) == 0
    return folder / "out"


@pytest.fixture
def deposit(deposit_folder, tmp_path):
    """A fresh copy: a run leaves its draft's record in the folder, and a rerun goes on with it."""
    return shutil.copytree(deposit_folder, tmp_path / "deposit")


def upload(folder, url, *extra):
    return main(["publish", "upload", str(folder), "--url", url, "--token-env", "ZT", *extra])


def test_upload_creates_a_draft_uploads_then_sets_metadata_and_never_publishes_unasked(
    deposit, zenodo, monkeypatch, capsys
):
    deposit_folder = deposit
    url, recorder = zenodo
    monkeypatch.setenv("ZT", "s3cret-token")
    assert upload(deposit_folder, url) == 0
    calls = [(method, path) for method, path, _, _ in recorder.requests]
    assert calls == [
        ("POST", "/api/deposit/depositions"),
        ("PUT", "/api/files/bucket-42/fish-v1-dataset.zip"),
        ("PUT", "/api/files/bucket-42/dataset-card.md"),
        ("PUT", "/api/deposit/depositions/42"),
    ]
    for _, path, headers, _ in recorder.requests:
        assert headers["Authorization"] == "Bearer s3cret-token"
        assert "s3cret" not in path
    uploaded = recorder.requests[1][3]
    assert uploaded == (deposit_folder / "fish-v1-dataset.zip").read_bytes()
    sent = json.loads(recorder.requests[3][3])
    assert sent == json.loads((deposit_folder / "zenodo-deposit.json").read_text())
    out = capsys.readouterr().out
    assert "a draft, not published" in out
    draft = json.loads((deposit_folder / "zenodo-draft.json").read_text())
    assert draft["id"] == 42 and list(draft["files"]) == ["fish-v1-dataset.zip", "dataset-card.md"]


def test_a_draft_loses_the_files_of_an_earlier_card_in_its_folder(deposit, zenodo, monkeypatch):
    """A card of v1, uploaded, then a card of v2 in the same folder: the draft held both
    versions' zips, and --publish would have minted one DOI for the two."""
    url, recorder = zenodo
    monkeypatch.setenv("ZT", "s3cret-token")
    assert upload(deposit, url) == 0
    (deposit / "fish-v1-dataset.zip").rename(deposit / "fish-v2-dataset.zip")  # the new card
    recorder.requests.clear()
    assert upload(deposit, url) == 0
    calls = [(method, path) for method, path, _, _ in recorder.requests]
    assert calls[:2] == [
        ("DELETE", "/api/files/bucket-42/fish-v1-dataset.zip"),
        ("PUT", "/api/files/bucket-42/fish-v2-dataset.zip"),
    ]
    draft = json.loads((deposit / "zenodo-draft.json").read_text())
    assert sorted(draft["files"]) == ["dataset-card.md", "fish-v2-dataset.zip"]


def test_publish_happens_only_with_the_flag_and_last(deposit, zenodo, monkeypatch, capsys):
    deposit_folder = deposit
    url, recorder = zenodo
    monkeypatch.setenv("ZT", "s3cret-token")
    assert upload(deposit_folder, url, "--publish") == 0
    assert [m for m, _, _, _ in recorder.requests] == ["POST", "PUT", "PUT", "PUT", "POST"]
    assert recorder.requests[-1][1] == "/api/deposit/depositions/42/actions/publish"
    assert "published, DOI 10.5072/zenodo.42" in capsys.readouterr().out


def test_upload_failures_are_clear_and_send_nothing_they_should_not(
    deposit, zenodo, monkeypatch, capsys, tmp_path
):
    deposit_folder = deposit
    url, recorder = zenodo
    monkeypatch.delenv("ZT", raising=False)
    assert upload(deposit_folder, url) == 2
    assert "set the environment variable ZT" in capsys.readouterr().err
    assert recorder.requests == []
    monkeypatch.setenv("ZT", "s3cret-token")
    # no network: a closed port stands in for an unreachable Zenodo
    assert upload(deposit_folder, "http://127.0.0.1:9") == 2
    assert "could not reach http://127.0.0.1:9" in capsys.readouterr().err
    assert upload(deposit_folder, "cvat.example/zenodo") == 2  # no scheme
    assert "could not send the request" in capsys.readouterr().err
    # Zenodo's own validation errors reach the user with the field named
    recorder.fail_metadata = True
    assert upload(deposit_folder, url) == 2
    assert "metadata.creators: Missing data." in capsys.readouterr().err
    # the rerun goes on with the same draft: no second draft, no second upload
    recorder.fail_metadata = False
    recorder.requests.clear()
    assert upload(deposit_folder, url) == 0
    assert [(m, p) for m, p, _, _ in recorder.requests] == [("PUT", "/api/deposit/depositions/42")]
    assert "going on with draft 42" in capsys.readouterr().out
    (deposit_folder / "zenodo-draft.json").unlink()
    # a deposit that breaks the rules is refused before any request
    recorder.requests.clear()
    broken = tmp_path / "broken"
    shutil.copytree(deposit_folder, broken)
    deposit = json.loads((broken / "zenodo-deposit.json").read_text())
    deposit["metadata"]["creators"] = []
    (broken / "zenodo-deposit.json").write_text(json.dumps(deposit))
    assert upload(broken, url) == 2
    assert "would be refused by Zenodo" in capsys.readouterr().err
    # a card with fields still to fill in may become a draft, never a published record
    shutil.copytree(deposit_folder, broken, dirs_exist_ok=True)
    card = broken / "dataset-card.md"
    card.write_text(card.read_text() + "\n_Missing: fill `contact` in `x.yaml`._\n")
    assert upload(broken, url, "--publish") == 2
    assert "1 field(s) to fill in" in capsys.readouterr().err
    assert recorder.requests == []


def test_template_is_written_once_and_read_back_empty(tmp_path, capsys):
    path = tmp_path / "fish.yaml"
    assert main(["publish", "template", "fish", "--out", str(path)]) == 0
    # the hint names the file: the card reads only the default one by itself
    assert f"publish card fish --metadata {path} --out FOLDER" in capsys.readouterr().out
    from imagine_assist.publish.metadata import load_metadata

    assert load_metadata(path, "fish").missing() == [
        "creators",
        "contact",
        "spatial_coverage",
        "temporal_coverage",
        "parameters",
    ]
    assert main(["publish", "template", "fish", "--out", str(path)]) == 2
    path.write_text("creators:\n  - name: Jane Doe\n")
    assert main(["publish", "card", "fish", "--metadata", str(path), "--out", "x"]) == 2
    assert "Family name, Given names" in capsys.readouterr().err


@pytest.mark.parametrize(
    "text, problem",
    [
        ("keywords: fish, OBSEA\n", "keywords must be a list of items"),
        ("contact: Jane Doe\n", "contact must be a group of fields"),
        ("spatial_coverage: OBSEA\n", "spatial_coverage must be a group of fields"),
        ("temporal_coverage: 2023\n", "temporal_coverage must be a group of fields"),
        ("creators:\n  name: Doe, Jane\n", "creators must be a list of entries"),
        ("temporal_coverage: {start: 2023-02-30}\n", "day is out of range for month"),
        ("temporal_coverage: {start: 30/01/2023}\n", "must be an ISO date"),
        ("spatial_coverage: {place: x, lat: north}\n", "lat and lon must be numbers"),
        ("contact: {name: J, email: jane-at-example}\n", "is not an address"),
        ("creators:\n  - {name: 'Doe, Jane', orcid: 1234}\n", "is not an ORCID iD"),
        # the right shape, a digit off: its check digit (ISO 7064 11,2) says so
        ("creators:\n  - {name: 'Doe, Jane', orcid: 0000-0002-1825-0098}\n", "check digit"),
        ("title: [\n", "is not valid YAML"),
    ],
)
def test_bad_metadata_is_named_not_a_traceback(tmp_path, capsys, text, problem):
    path = tmp_path / "fish.yaml"
    path.write_text(text)
    assert main(["publish", "card", "fish", "--metadata", str(path), "--out", "x"]) == 2
    assert problem in capsys.readouterr().err


def test_metadata_dates_may_be_datetimes_and_coordinates_southern(tmp_path):
    from imagine_assist.publish.metadata import load_metadata

    path = tmp_path / "fish.yaml"
    path.write_text(
        "temporal_coverage: {start: 2023-01-01T10:00:00, end: 2023-03-01}\n"
        "spatial_coverage: {place: Hobart, lat: -42.88, lon: 147.33}\n"
    )
    meta = load_metadata(path, "fish")
    assert str(meta.start) == "2023-01-01" and meta.lat == -42.88


@pytest.mark.slow  # the loop round: the full tier
def test_a_damaged_version_card_writes_nothing_and_says_so(loop_round, tmp_path, capsys):
    """A card without its mAP50 was a KeyError traceback, with the dataset card and zip
    written and the model card and deposit not: a folder of two publications' parts."""
    root, _, _ = loop_round
    models = shutil.copytree(root / "models", tmp_path / "models")
    path = models / "fish" / "versions" / "v1" / "card.json"
    card = json.loads(path.read_text())
    del card["metrics"]["candidate"]["mAP50"]
    path.write_text(json.dumps(card))
    out = tmp_path / "out"
    argv = ["publish", "card", "fish", "--version", "v1", "--models", str(models)]
    assert main([*argv, "--out", str(out)]) == 2
    assert "v1's card.json is damaged (KeyError: 'mAP50'); nothing was written" in (
        capsys.readouterr().err
    )
    assert list(out.iterdir()) == []
