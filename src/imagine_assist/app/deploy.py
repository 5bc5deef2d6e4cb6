"""`imagine-assist deploy`: the build folder and `nuctl deploy` for one function."""

from __future__ import annotations

import argparse
from pathlib import Path

from imagine_assist.errors import UserError
from imagine_assist.home import Home


def add_parser(subparsers, parents) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "deploy",
        help="build folder and nuctl deploy for one function",
        parents=parents,
    )
    parser.add_argument("function", help="e.g. fish-detector (`imagine-assist functions list`)")
    parser.add_argument("--gpu", action="store_true", help="use function-gpu.yaml")
    parser.add_argument(
        "--wheelhouse", help="folder of wheels: build with no network (default: pip downloads)"
    )
    parser.add_argument("--models", help="models directory to mount (default: <home>/models)")
    parser.add_argument("--out", help="build folder (default: <home>/deploy/<function>)")
    parser.add_argument(
        "--base-image", help="Docker base image for the build (default: the function.yaml's)"
    )
    parser.add_argument("--print-only", action="store_true", help="print the nuctl command")
    parser.add_argument("--kube", action="store_true", help="Nuclio on Kubernetes settings")
    parser.add_argument(
        "--registry", help="with --kube: the image registry the build pushes to (nuctl's)"
    )
    parser.add_argument(
        "--replicas",
        type=int,
        nargs=2,
        default=[1, 4],
        metavar=("MIN", "MAX"),
        help="with --kube: replica bounds",
    )
    parser.add_argument("--kafka-brokers", help="comma-separated: add a Kafka trigger")
    parser.add_argument("--kafka-topics", help="comma-separated topics for the Kafka trigger")
    parser.set_defaults(run=run, out_is_folder=True)
    return parser


def run(args: argparse.Namespace) -> int:
    import shlex
    import shutil
    import subprocess

    from imagine_assist.deploy import KafkaSource, KubeSettings, plan_deploy
    from imagine_assist.functions.catalog import get_spec

    spec = get_spec(args.function)
    models = Path(args.models) if args.models else Home.resolve().models
    missing_models = not args.kube and not models.is_dir()
    if args.kube and not args.registry and not args.print_only:
        raise UserError("--kube builds an image and pushes it: give --registry (nuctl's)")
    if args.registry and not args.kube:
        raise UserError("--registry goes with --kube")
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
        spec,
        folder,
        models,
        args.gpu,
        wheelhouse,
        args.base_image,
        kube=kube,
        kafka=kafka,
        registry=args.registry,
    )
    print(f"build folder {plan.folder} ({plan.config.name}, main.py, wheels/)")
    if missing_models:  # mounted as it is: an empty folder, so the defaults serve
        plan.notes.append(
            f"no models folder at {models}: the function serves the default models in its "
            "wheel until the family's models are there (`--models` names another folder)"
        )
    for note in plan.notes:
        print(f"note: {note}")
    ours = list((plan.folder / "wheels").glob("imagine_assist-*.whl"))
    if not ours and not args.print_only:
        # the build would install whatever the index serves under our name, or fail
        raise UserError(
            f"{plan.folder / 'wheels'} holds no imagine-assist wheel: `pip wheel --no-deps . "
            f"-w {plan.folder / 'wheels'}` in a checkout, or give --wheelhouse; then run "
            "this again"
        )
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
