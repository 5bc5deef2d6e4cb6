"""The `imagine-assist` command."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from imagine_assist.errors import UserError
from imagine_assist.home import HOME_ENV, Home


def _functions(args: argparse.Namespace) -> int:
    from imagine_assist.functions.catalog import FUNCTIONS
    from imagine_assist.functions.render import drift, render

    specs = list(FUNCTIONS.values())
    if args.action == "list":
        for spec in specs:
            print(f"{spec.id:18} {spec.kind:9} {', '.join(spec.label_names)}")
        return 0
    if args.check:
        stale = drift(specs, args.out)
        for path in stale:
            print(f"out of date: {path}", file=sys.stderr)
        if stale:
            print("run `imagine-assist functions render` and commit the result", file=sys.stderr)
        return 1 if stale else 0
    for path in render(specs, args.out):
        print(path)
    return 0


def _samples(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from imagine_assist.samples import SAMPLE_FAMILIES, generate_tow, write_dataset, write_tow

    if args.family == "tow":
        if not 0 < args.seconds <= 3600:
            raise UserError("--seconds must lie in (0, 3600]")
        files = write_tow(generate_tow(args.seconds, seed=args.seed), args.out)
        print(
            f"tow video {files.video}, CVAT for video XML {files.annotations}, "
            f"true counts {files.counts}"
        )
        return 0
    family = SAMPLE_FAMILIES[args.family]
    samples = tqdm(family.generate(args.n, seed=args.seed), total=args.n, unit="image")
    files = write_dataset(args.out, samples, family.labels)
    print(f"{files.image_count} images: YOLO dataset {files.data_yaml}, CVAT XML {files.cvat_xml}")
    return 0


def _train_plankton(args: argparse.Namespace, target: Path, work: Path) -> int:
    from dataclasses import replace

    from imagine_assist.training.plankton import PLANKTON_RECIPE, train_plankton

    recipe = PLANKTON_RECIPE.scaled(epochs=args.epochs, images=args.images)
    if args.hours:
        recipe = replace(recipe, hours=args.hours)
    metrics = train_plankton(target, work, recipe, device=args.device, only=args.only)
    test = metrics["test"]
    for name in ("model", "watershed"):
        if name in test:
            scores = test[name]["all"]
            print(
                f"separator ({name}): F1 {scores['f1']:.3f}, over-split "
                f"{scores['over_split_rate']:.3f}, under-split {scores['under_split_rate']:.3f}"
            )
    if "classifier" in test:
        scores = test["classifier"]
        print(
            f"classifier: recall(multiple) {scores['recall_multiple']:.3f}, "
            f"precision(multiple) {scores['precision_multiple']:.3f}"
        )
    print(f"installed the plankton models in {target}")
    return 0


def _reload_gateway(gateway: str, family: str) -> None:
    """Ask a running gateway to reload every function of the family."""
    import requests

    from imagine_assist.functions.catalog import FUNCTIONS
    from imagine_assist.nuclio.gateway import client_headers

    for spec in FUNCTIONS.values():
        if spec.family != family:
            continue
        url = f"{gateway.rstrip('/')}/api/functions/{spec.id}/reload"
        try:
            response = requests.post(url, headers=client_headers(), timeout=30)
        except requests.RequestException as error:
            raise UserError(f"the gateway at {gateway} did not answer: {error}") from None
        if response.status_code == 404:
            continue  # this gateway does not serve that function
        if response.status_code >= 400:
            raise UserError(f"{url}: {response.status_code} {response.text[:200]}")
        print(f"reloaded {spec.id} on {gateway}")


def _train_from_exports(args: argparse.Namespace) -> int:
    from imagine_assist.models.registry import Registry
    from imagine_assist.models.store import family_dir
    from imagine_assist.training.retrain import load_recipe, retrain

    registry = Registry(family_dir(args.family, args.models).parent)
    work = Path(args.work) if args.work else Home.resolve().root / "runs" / f"{args.family}-retrain"
    recipe = load_recipe(args.family, args.recipe)
    result = retrain(
        args.family, args.exports, registry, work, recipe, args.device, args.force, args.epochs
    )
    metrics = result.card["metrics"]
    deployed = metrics["deployed"]
    print(
        f"{args.family} {result.version.name}: mAP50 {metrics['candidate']['mAP50']:.3f}"
        + (
            f" (deployed {metrics['deployed_version']}: {deployed['mAP50']:.3f})"
            if deployed
            else ""
        )
        + f" on {result.card['evaluated_on']['images']} "
        + ("held-out" if result.card["evaluated_on"]["split"] != "train" else "training")
        + " images"
    )
    if result.card["evaluated_on"]["split"] == "train":
        print(
            "warning: no image fell in the val or test split, so the gate compared the "
            "models on images the candidate trained on; export more images (or a longer "
            "stretch of video) before trusting it"
        )
    print("gate: " + "; ".join(result.gate["reasons"]))
    if result.promoted:
        forced = "" if result.gate["passed"] else " (forced)"
        print(f"promoted {result.version.name}{forced}")
        if args.gateway:
            _reload_gateway(args.gateway, args.family)
    else:
        current = registry.current(args.family)
        print(
            f"kept {current.name if current else 'the deployed model'}; `imagine-assist models "
            f"promote {args.family} {result.version.name} --force` overrides the gate"
        )
    return 0


def _models(args: argparse.Namespace) -> int:
    import json

    from imagine_assist.models.registry import Registry
    from imagine_assist.models.store import family_dir

    registry = Registry(family_dir(args.family, args.models).parent)
    current = registry.current(args.family)
    if args.action == "list":
        versions = registry.versions(args.family)
        if not versions:
            print(f"no {args.family} versions in {registry.root}")
        for version in versions:
            card = version.card
            candidate = (card.get("metrics") or {}).get("candidate") or {}
            mark = "*" if current and current.name == version.name else " "
            print(
                f"{mark} {version.name}  mAP50 {candidate.get('mAP50', float('nan')):.3f}  "
                f"gate {'passed' if card.get('gate', {}).get('passed') else 'failed'}  "
                f"{len(card.get('data', {}).get('exports', []))} export(s)"
            )
        return 0
    if args.action == "show":
        version = registry.get(args.family, args.version) if args.version else current
        if version is None:
            raise UserError(f"{args.family} has no promoted version; name one with --version")
        print(json.dumps(version.card, indent=2))
        return 0
    if args.action == "promote":
        if not args.version:
            raise UserError("name the version to promote, e.g. `models promote fish v3`")
        version = registry.get(args.family, args.version)
        gate = version.card.get("gate", {"passed": True})
        if not gate.get("passed") and not args.force:
            raise UserError(
                f"{version.name} failed its gate ({'; '.join(gate.get('reasons', []))}); "
                "add --force to promote it anyway"
            )
        forced = not gate.get("passed", True)
        reason = "by hand" + (", forced" if forced else "")
        registry.promote(args.family, version.name, reason, forced)
        print(f"promoted {args.family} {version.name}")
    else:
        version = registry.rollback(args.family)
        print(f"rolled {args.family} back to {version.name}")
    if args.gateway:
        _reload_gateway(args.gateway, args.family)
    return 0


def _review(args: argparse.Namespace) -> int:
    import json

    from imagine_assist.review.review import MISTAKES_VIEW, review_export

    out = Path(args.out)
    work = Home.resolve().root / "runs" / "review"
    dataset, summary = review_export(
        args.export, args.function, out, work, args.models, args.threshold
    )
    facts = json.loads(summary.summary.read_text())
    print(
        f"{facts['samples']} images: mAP50 {facts['mAP50']:.3f}, TP {facts['tp']}, "
        f"FP {facts['fp']}, FN {facts['fn']}"
    )
    for name, scores in facts["per_class"].items():
        print(f"  {name}: precision {scores['precision']:.3f}, recall {scores['recall']:.3f}")
    print(f"likely mistakes first ({facts['mistakes_scored_by']}): {', '.join(summary.flagged)}")
    print(f"summary and plots in {out}; FiftyOne dataset {dataset.name!r}, view {MISTAKES_VIEW!r}")
    if args.send_to_cvat:
        from imagine_assist.functions.catalog import get_spec
        from imagine_assist.review.review import send_to_cvat

        classes = list(get_spec(args.function).label_names)
        key, count = send_to_cvat(dataset, classes, args.send_to_cvat)
        print(f"sent {count} samples to {args.send_to_cvat}; bring the fixes back with key {key!r}")
    if args.app:
        from imagine_assist.review.app import serve_app

        serve_app(dataset, MISTAKES_VIEW, args.port)
    return 0


def cvat_client(host: str):
    """A logged-in cvat-sdk client from CVAT_ACCESS_TOKEN, or CVAT_USER and CVAT_PASSWORD."""
    from cvat_sdk import make_client

    token = os.environ.get("CVAT_ACCESS_TOKEN")
    user, password = os.environ.get("CVAT_USER"), os.environ.get("CVAT_PASSWORD")
    if token:
        return make_client(host, access_token=token)
    if user and password:
        return make_client(host, credentials=(user, password))
    raise UserError("set CVAT_ACCESS_TOKEN, or CVAT_USER and CVAT_PASSWORD, to reach CVAT")


def _loop(args: argparse.Namespace) -> int:
    from imagine_assist.loop import run_loop

    work = Path(args.work) if args.work else Home.resolve().root / "loop" / args.family
    reload = (lambda family: _reload_gateway(args.gateway, family)) if args.gateway else None
    with cvat_client(args.cvat) as client:
        report = run_loop(
            client,
            args.family,
            args.task,
            args.next_task,
            work,
            args.models,
            args.device,
            args.epochs,
            args.force,
            reload,
        )
    print(f"exported task {args.task} -> {report.export}; review in {report.review_summary.parent}")
    print(
        f"trained {report.version} from {len(report.exports_used)} export(s): "
        + ("promoted" if report.promoted else "not promoted")
        + " ("
        + "; ".join(report.gate_reasons)
        + ")"
    )
    if report.annotated_task is not None:
        print(f"pre-annotated task {report.annotated_task} with the live model")
    return 0


def _deploy(args: argparse.Namespace) -> int:
    import shlex
    import shutil
    import subprocess

    from imagine_assist.deploy import KafkaSource, KubeSettings, plan_deploy
    from imagine_assist.functions.catalog import get_spec

    spec = get_spec(args.function)
    models = Path(args.models) if args.models else Home.resolve().models
    folder = Path(args.out or Home.resolve().root / "deploy" / spec.id)
    wheelhouse = Path(args.wheelhouse) if args.wheelhouse else None
    kube = KubeSettings(*args.replicas) if args.kube else None
    kafka = None
    if args.kafka_brokers or args.kafka_topics:
        kafka = KafkaSource(
            tuple(filter(None, (args.kafka_brokers or "").split(","))),
            tuple(filter(None, (args.kafka_topics or "").split(","))),
        )
    plan = plan_deploy(
        spec, folder, models, args.gpu, wheelhouse, args.base_image, kube=kube, kafka=kafka
    )
    print(f"build folder {plan.folder} ({plan.config.name}, main.py, wheels/)")
    for note in plan.notes:
        print(f"note: {note}")
    nuctl = shutil.which("nuctl")
    for command in plan.commands:
        if nuctl and not args.print_only:
            print("running: " + shlex.join(command))
            subprocess.run(command, check=True)
        else:
            print(
                ("nuctl is not installed here; run: " if not nuctl else "run: ")
                + shlex.join(command)
            )
    return 0


def _bundle(args: argparse.Namespace) -> int:
    from imagine_assist.bundle import build_bundle
    from imagine_assist.checksums import verify_manifest

    if args.words:
        if args.words[0] != "verify" or len(args.words) != 2:
            raise UserError("usage: imagine-assist bundle verify <bundle folder>")
        problems = verify_manifest(args.words[1])
        for problem in problems:
            print(problem)
        print(f"{args.words[1]}: " + ("intact" if not problems else f"{len(problems)} problem(s)"))
        return 0 if not problems else 1
    if not args.out:
        raise UserError("give --out <folder> for the bundle (or `bundle verify <folder>`)")
    functions = (
        args.functions.split(",") if args.functions else ["fish-detector", "litter-detector"]
    )
    report = build_bundle(
        Path(args.out),
        functions,
        args.models,
        args.with_training,
        args.with_review,
        args.python,
        args.platform,
        Path(args.wheelhouse) if args.wheelhouse else None,
    )
    print(
        f"bundle {report.folder}: {report.wheels} wheels, models {', '.join(report.models)}, "
        f"{report.size_bytes / 1e6:.0f} MB; install with {report.folder / 'install.sh'}"
    )
    return 0


def _train(args: argparse.Namespace) -> int:
    from imagine_assist.models.store import family_dir

    if args.exports:
        return _train_from_exports(args)
    from imagine_assist.training.defaults import train_default
    from imagine_assist.training.recipes import RECIPES

    target = family_dir(args.family, args.models)
    work = Path(args.work) if args.work else Home.resolve().root / "runs" / args.family
    if args.family == "plankton":
        return _train_plankton(args, target, work)
    recipe = RECIPES[args.family].scaled(epochs=args.epochs, images=args.images)
    trained = train_default(args.family, target, work, recipe, device=args.device)
    test = trained.metrics["test"]
    print(
        f"{args.family}: held-out test mAP50 {test['mAP50']:.3f}, mAP50-95 "
        f"{test['mAP50-95']:.3f}, precision {test['precision']:.3f}, recall {test['recall']:.3f}"
    )
    print(f"installed {trained.onnx} and {trained.pt}")
    return 0


def _box_detector(function_id: str, *args):
    """A function that answers with boxes from a model: what predict and track run."""
    from imagine_assist.functions.catalog import load_function
    from imagine_assist.functions.detector import DetectorFunction

    function = load_function(function_id, *args)
    if not isinstance(function, DetectorFunction):
        raise UserError(
            f"{function_id} is not a box detector; predict and track run fish-detector, "
            "litter-detector or burrow-detector (plankton: imagine-assist separate)"
        )
    return function


def _predict(args: argparse.Namespace) -> int:
    from imagine_assist.predict import predict_to_files

    function = _box_detector(
        args.function, args.weights, args.models, args.tile_size, args.tile_overlap
    )
    report = predict_to_files(
        function, args.source, args.out, args.threshold, previews=not args.no_previews
    )
    print(
        f"{args.function}: {sum(report.totals.values())} objects "
        f"{json.dumps(report.totals)} -> {report.out_dir}"
    )
    for path, reason in report.skipped:
        print(f"skipped {path}: {reason}", file=sys.stderr)
    return 0


def _serve(args: argparse.Namespace) -> int:
    from imagine_assist.nuclio.serve import serve

    # a server's log is its record: model choices, loads and requests are worth seeing
    logging.getLogger("imagine_assist").setLevel(logging.INFO)
    function_ids = [f.strip() for f in args.functions.split(",")] if args.functions else None
    serve(
        args.host,
        args.port,
        function_ids,
        args.models,
        args.workers,
        args.timeout,
        Path(args.access_log) if args.access_log else None,
    )
    return 0


def _track(args: argparse.Namespace) -> int:
    from imagine_assist.tow import Survey, track_to_files, upload_tracks

    if args.every < 1:
        raise UserError("--every must be 1 or more")
    function = _box_detector(args.function, args.weights, args.models)
    survey = Survey(args.fov_deg, args.camera_height_m, args.tow_length_m, args.speed_m_s)
    report = track_to_files(
        args.video, function, args.out, args.every, survey, args.system_radius_px
    )
    systems = sum(n for _, n in report.counts)
    print(
        f"{len(report.tracks.tracks)} tracks, {systems} burrow systems over "
        f"{len(report.counts)} min -> {report.out_dir}"
    )
    if report.density:
        print(
            f"density {report.density['density_per_m2']} burrow systems per m² "
            f"over {report.density['area_m2']} m²"
        )
    if args.upload_to_task is not None:
        host = os.environ.get("CVAT_HOST")
        if not host:
            raise UserError(
                "set CVAT_HOST, and CVAT_ACCESS_TOKEN or CVAT_USER and CVAT_PASSWORD, to "
                "upload to CVAT"
            )
        with cvat_client(host) as client:
            upload_tracks(client, args.upload_to_task, report.tracks.tracks)
        print(f"uploaded {len(report.tracks.tracks)} tracks to task {args.upload_to_task}")
    return 0


def _separate(args: argparse.Namespace) -> int:
    from imagine_assist.zooscan import SeparatorSource, separate_to_files

    if args.scale_bar_rows is not None and args.scale_bar_rows < 0:
        raise UserError("--scale-bar-rows must be 0 or more")
    if args.workers < 1:
        raise UserError("--workers must be 1 or more")
    source = SeparatorSource(args.weights, args.models, args.scale_bar_rows)
    report = separate_to_files(args.source, args.out, source, workers=args.workers)
    print(
        f"{report.vignettes} vignettes ({report.multiples} multiple) -> {report.objects} "
        f"organisms; EcoTaxa TSV {report.tsv}"
    )
    for path, reason in report.skipped:
        print(f"skipped {path}: {reason}", file=sys.stderr)
    return 0


def _demo(args: argparse.Namespace) -> int:
    from imagine_assist.demo import run_demo

    run_demo(Path(args.out), args.models)
    return 0


def _publish(args: argparse.Namespace) -> int:
    from imagine_assist.models.registry import Registry
    from imagine_assist.models.store import family_dir
    from imagine_assist.publish import upload_publication, write_publication
    from imagine_assist.publish.cards import default_title
    from imagine_assist.publish.metadata import default_path, write_template

    if args.action == "upload":
        draft = upload_publication(
            Path(args.target), args.token_env, args.sandbox, args.url, args.publish
        )
        state = f"published, DOI {draft.doi}" if draft.published else "a draft, not published"
        print(f"deposit {draft.id} is {state}: {draft.html}")
        if not draft.published:
            print("check it on Zenodo, then publish there or run again with --publish")
        return 0
    family = args.target
    metadata = Path(args.metadata) if args.metadata else default_path(Home.resolve().root, family)
    if args.action == "template":
        path = write_template(
            Path(args.out) if args.out else metadata, family, default_title(family, "vN")
        )
        print(f"wrote {path}; fill it in, then run `imagine-assist publish card {family}`")
        return 0
    if not args.out:
        raise UserError("give --out <folder> for the cards, the deposit JSON and the zip")
    registry = Registry(family_dir(family, args.models).parent)
    publication = write_publication(
        registry,
        family,
        Path(args.out),
        metadata,
        args.version,
        [Path(path) for path in args.export or []],
    )
    print(
        f"{family} {publication.version}: cards, zenodo-deposit.json and "
        f"{publication.dataset_zip.name} in {publication.folder}"
    )
    for gap in publication.missing:
        print(f"missing: {gap.field} (fill it in {gap.where})")
    for problem in publication.deposit_problems:
        print(f"zenodo would refuse the deposit: {problem}")
    if not metadata.is_file():
        print(f"no metadata file at {metadata}: `imagine-assist publish template {family}`")
    return 0


def _usage(args: argparse.Namespace) -> int:
    import datetime as dt

    from imagine_assist.usage.record import usage_log_path
    from imagine_assist.usage.report import (
        load_geoip,
        read_counters,
        read_uses,
        summarise,
        write_report,
    )

    home = Home.resolve()
    if args.log:
        logs = [Path(path) for path in args.log]
    else:  # the current logs and what logrotate kept of them (.1, .2.gz, ...)
        cvat_cli_log = usage_log_path(home)
        logs = sorted((home.root / "logs").glob("gateway-access.jsonl*"))
        logs += sorted(cvat_cli_log.parent.glob(f"{cvat_cli_log.name}*"))
        logs = logs or [home.root / "logs" / "gateway-access.jsonl", cvat_cli_log]
    found = [path for path in logs if path.is_file()]
    if not found:
        raise UserError(f"no usage logs at {', '.join(map(str, logs))}; give them with --log")
    try:
        since = dt.date.fromisoformat(args.since) if args.since else None
    except ValueError:
        raise UserError(f"--since wants a date like 2026-01-01, not {args.since!r}") from None
    uses, skipped = read_uses(found)
    country = load_geoip(Path(args.geoip)) if args.geoip else None
    report = summarise(uses, since, country)
    written = write_report(report, Path(args.out))
    for row in report.yearly:
        print(
            f"{row['year']}: {row['images']} images, {row['clients']} client address(es), "
            f"{row['users']} CVAT user(s)"
            + (f", {row['countries']} countries ({row['country_codes']})" if country else "")
        )
    for function, images in report.functions.items():
        print(f"  {function}: {images} images")
    if skipped:
        print(f"skipped {skipped} unreadable log line(s)")
    if args.gateway:
        for function, count in sorted(read_counters(args.gateway).items()):
            print(f"  running gateway, since its start: {function} {count} answered")
    print(f"wrote {', '.join(str(path) for path in written)}")
    return 0


def _threshold(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"threshold must lie in [0, 1], got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="imagine-assist", description=__doc__)
    parser.add_argument(
        "--home", help=f"state directory (default ${HOME_ENV} or ~/.local/share/imagine-assist)"
    )
    parser.add_argument("-v", "--verbose", action="store_true")
    commands = parser.add_subparsers(dest="command", required=True)

    functions = commands.add_parser(
        "functions", help="list the served functions or render serverless/"
    )
    functions.add_argument("action", choices=["list", "render"])
    functions.add_argument("--out", default="serverless", help="where serverless/<id>/ folders go")
    functions.add_argument("--check", action="store_true", help="only report files that differ")
    functions.set_defaults(run=_functions)

    samples = commands.add_parser("samples", help="write a synthetic dataset (YOLO + CVAT XML)")
    samples.add_argument(
        "family",
        choices=["fish", "litter", "burrow", "plankton", "tow"],
        help="tow: a synthetic UWTV tow video with its tracks",
    )
    samples.add_argument("--out", required=True)
    samples.add_argument("-n", type=int, default=20, help="number of images")
    samples.add_argument("--seconds", type=float, default=60.0, help="length of a tow")
    samples.add_argument("--seed", type=int, default=0)
    samples.set_defaults(run=_samples)

    train = commands.add_parser("train", help="train a family's default model on sample data")
    train.add_argument("family", choices=["fish", "litter", "burrow", "plankton"])
    train.add_argument("--models", help="models directory (default <home>/models)")
    train.add_argument("--work", help="directory for data and training runs")
    train.add_argument("--epochs", type=int)
    train.add_argument("--images", type=int, help="generated train+val images")
    train.add_argument("--device", default="cpu", help="cpu (default), or a CUDA device such as 0")
    train.add_argument(
        "--hours", type=float, help="plankton: wall-clock budget per model (overrides --epochs)"
    )
    train.add_argument(
        "--only", choices=["separator", "classifier"], help="plankton: train one of the two models"
    )
    train.add_argument(
        "--from",
        dest="exports",
        action="append",
        default=[],
        metavar="EXPORT_ZIP",
        help="retrain from this CVAT export (repeat for several); versions go to the registry",
    )
    train.add_argument("--recipe", help="retraining recipe yaml (default: the family's)")
    train.add_argument("--force", action="store_true", help="promote even if the gate fails")
    train.add_argument("--gateway", help="URL of a running gateway to reload after promotion")

    bundle = commands.add_parser(
        "bundle", help="an offline install bundle (wheels, models, serverless/, compose/)"
    )
    bundle.add_argument("words", nargs="*", help="`verify <folder>` to check a bundle")
    bundle.add_argument("--out", help="a new folder for the bundle")
    bundle.add_argument("--functions", help="comma-separated (default fish and litter detectors)")
    bundle.add_argument("--models", help="models directory (default <home>/models)")
    bundle.add_argument("--with-training", action="store_true", help="add torch and ultralytics")
    bundle.add_argument("--with-review", action="store_true", help="add FiftyOne")
    bundle.add_argument("--python", default=f"{sys.version_info.major}.{sys.version_info.minor}")
    bundle.add_argument(
        "--platform",
        action="append",
        default=[],
        help="pip platform tag of the target (repeat for each it accepts); default: this machine",
    )
    bundle.add_argument("--wheelhouse", help="use these wheels instead of downloading")
    bundle.set_defaults(run=_bundle)

    deploy = commands.add_parser("deploy", help="build folder and nuctl deploy for one function")
    deploy.add_argument("function")
    deploy.add_argument("--gpu", action="store_true", help="use function-gpu.yaml")
    deploy.add_argument("--wheelhouse", help="folder of wheels: build with no network")
    deploy.add_argument("--models", help="models directory to mount (default <home>/models)")
    deploy.add_argument("--out", help="build folder (default <home>/deploy/<function>)")
    deploy.add_argument("--base-image", help="Docker base image for the build")
    deploy.add_argument("--print-only", action="store_true", help="print the nuctl command")
    deploy.add_argument("--kube", action="store_true", help="Nuclio on Kubernetes settings")
    deploy.add_argument(
        "--replicas",
        type=int,
        nargs=2,
        default=[1, 4],
        metavar=("MIN", "MAX"),
        help="with --kube: replica bounds (default 1 4)",
    )
    deploy.add_argument("--kafka-brokers", help="comma-separated: add a Kafka trigger")
    deploy.add_argument("--kafka-topics", help="comma-separated topics for the Kafka trigger")
    deploy.set_defaults(run=_deploy)

    loop = commands.add_parser(
        "loop", help="export a corrected CVAT task, review, retrain, promote, pre-annotate the next"
    )
    loop.add_argument("family", choices=["fish", "litter", "burrow"])
    loop.add_argument("--cvat", required=True, help="CVAT server URL")
    loop.add_argument("--task", type=int, required=True, help="the corrected task")
    loop.add_argument("--next-task", type=int, help="the task to pre-annotate afterwards")
    loop.add_argument("--models", help="models directory (default <home>/models)")
    loop.add_argument("--work", help="folder for exports, reviews and runs")
    loop.add_argument("--epochs", type=int)
    loop.add_argument("--device", default="cpu")
    loop.add_argument("--force", action="store_true", help="promote even if the gate fails")
    loop.add_argument("--gateway", help="URL of a running gateway to reload after promotion")
    loop.set_defaults(run=_loop)

    review = commands.add_parser(
        "review", help="compare a corrected CVAT export with the model's predictions in FiftyOne"
    )
    review.add_argument("export", help="CVAT export zip (images 1.1, video 1.1, COCO, YOLO)")
    review.add_argument(
        "--function", required=True, help="the deployed detector, e.g. fish-detector"
    )
    review.add_argument("--out", default="review", help="folder for summary.json and plots")
    review.add_argument("--models", help="models directory (default <home>/models)")
    review.add_argument("--threshold", type=float, help="prediction confidence threshold")
    review.add_argument("--app", action="store_true", help="open the FiftyOne App on 127.0.0.1")
    review.add_argument("--port", type=int, default=5151, help="FiftyOne App port")
    review.add_argument(
        "--send-to-cvat",
        metavar="CVAT_URL",
        help="send the likely mistakes to this CVAT for correction (CVAT_USER, CVAT_PASSWORD)",
    )
    review.set_defaults(run=_review)

    models = commands.add_parser("models", help="list, show, promote or roll back model versions")
    models.add_argument("action", choices=["list", "show", "promote", "rollback"])
    models.add_argument("family", choices=["fish", "litter", "burrow", "plankton"])
    models.add_argument("version", nargs="?", help="e.g. v3 (show, promote)")
    models.add_argument("--models", help="models directory (default <home>/models)")
    models.add_argument(
        "--force", action="store_true", help="promote a version that failed its gate"
    )
    models.add_argument("--gateway", help="URL of a running gateway to reload")
    models.set_defaults(run=_models)

    publish = commands.add_parser(
        "publish", help="dataset and model cards, Zenodo deposit and dataset zip of a version"
    )
    publish.add_argument("action", choices=["template", "card", "upload"])
    publish.add_argument("target", help="family (template, card) or card folder (upload)")
    publish.add_argument("--out", help="card: output folder; template: metadata file path")
    publish.add_argument("--version", help="registry version, e.g. v3 (default: promoted one)")
    publish.add_argument("--metadata", help="metadata file (default <home>/publish/<family>.yaml)")
    publish.add_argument(
        "--export", action="append", help="where an export that trained it is now (repeat)"
    )
    publish.add_argument("--models", help="models directory (default <home>/models)")
    publish.add_argument(
        "--token-env", default="ZENODO_TOKEN", help="variable holding the Zenodo token"
    )
    publish.add_argument("--sandbox", action="store_true", help="sandbox.zenodo.org")
    publish.add_argument(
        "--url", help="another server with Zenodo's deposit API (a self-hosted Zenodo)"
    )
    publish.add_argument(
        "--publish", action="store_true", help="publish the draft (a DOI cannot be taken back)"
    )
    publish.set_defaults(run=_publish)

    usage = commands.add_parser(
        "usage", help="images processed per function and month, users, clients, countries"
    )
    usage.add_argument("action", choices=["report"])
    usage.add_argument("--since", help="first day counted (YYYY-MM-DD)")
    usage.add_argument(
        "--log", action="append", help="access or cvat-cli log (default: <home>/logs/)"
    )
    usage.add_argument("--geoip", help="CSV of address ranges: start,end,country (offline)")
    usage.add_argument("--gateway", help="also read this running gateway's counters")
    usage.add_argument("--out", default="usage-report", help="folder for the CSV and plot")
    usage.set_defaults(run=_usage)
    train.set_defaults(run=_train)

    predict = commands.add_parser(
        "predict", help="run a function over images, write CVAT XML, CSV, previews"
    )
    predict.add_argument("source", help="an image or a directory of images")
    predict.add_argument("--function", required=True)
    predict.add_argument("--out", required=True)
    predict.add_argument("--weights", help=".onnx or .pt (default: the family's installed model)")
    predict.add_argument("--models", help="models directory (default <home>/models)")
    predict.add_argument("--threshold", type=_threshold)
    predict.add_argument("--tile-size", type=int)
    predict.add_argument("--tile-overlap", type=int)
    predict.add_argument("--no-previews", action="store_true")
    predict.set_defaults(run=_predict)

    serve = commands.add_parser(
        "serve", help="serve the functions to CVAT as a Nuclio-compatible gateway"
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback)")
    serve.add_argument("--port", type=int, default=8070)
    serve.add_argument("--functions", help="comma-separated function ids (default all)")
    serve.add_argument("--models", help="models directory (default <home>/models)")
    serve.add_argument("--workers", type=int, default=1, help="inference threads")
    serve.add_argument("--timeout", type=float, help="seconds per request (default: the spec's)")
    serve.add_argument("--access-log", help="JSON-lines access log (default <home>/logs/)")
    serve.set_defaults(run=_serve)

    track = commands.add_parser(
        "track", help="track burrows over a whole video; counts per minute, density, CVAT XML"
    )
    track.add_argument("video")
    track.add_argument("--function", default="burrow-detector")
    track.add_argument("--out", required=True)
    track.add_argument("--weights", help=".onnx or .pt (default: the family's installed model)")
    track.add_argument("--models", help="models directory (default <home>/models)")
    track.add_argument("--every", type=int, default=1, help="detect on every k-th frame")
    track.add_argument("--fov-deg", type=float, help="horizontal field of view of the camera")
    track.add_argument("--camera-height-m", type=float, help="camera height above the seabed")
    track.add_argument("--tow-length-m", type=float, help="distance covered by the tow")
    track.add_argument("--speed-m-s", type=float, help="tow speed, if the length is not known")
    track.add_argument(
        "--system-radius-px",
        type=float,
        help="openings closer than this form one system (default from the FOV)",
    )
    track.add_argument(
        "--upload-to-task",
        type=int,
        metavar="ID",
        help="add the tracks to this CVAT task (CVAT_HOST; CVAT_ACCESS_TOKEN, or CVAT_USER "
        "and CVAT_PASSWORD)",
    )
    track.set_defaults(run=_track)

    separate = commands.add_parser(
        "separate", help="split touching plankton in ZooScan vignettes; EcoTaxa TSV"
    )
    separate.add_argument("source", help="a vignette or a directory of vignettes")
    separate.add_argument("--out", required=True)
    separate.add_argument("--weights", help="separator .onnx (default: the installed model)")
    separate.add_argument("--models", help="models directory (default <home>/models)")
    separate.add_argument(
        "--workers",
        type=int,
        default=min(2, os.cpu_count() or 1),
        help="worker processes (default: 2, or 1 on a one-core machine)",
    )
    separate.add_argument(
        "--scale-bar-rows",
        type=int,
        help="rows at the bottom holding the 1 mm scale bar (default 22)",
    )
    separate.set_defaults(run=_separate)

    demo = commands.add_parser(
        "demo", help="train the default models if needed and run them on demo data"
    )
    demo.add_argument("--out", default="demo-output")
    demo.add_argument("--models", help="models directory (default <home>/models)")
    demo.set_defaults(run=_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.home:
        os.environ[HOME_ENV] = args.home
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return args.run(args)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
