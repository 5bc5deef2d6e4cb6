"""One turn of the annotation loop on sample data, as `imagine-assist demo` shows it.

pre-annotate new images -> a simulated correction (the ground truth plays the annotator,
exported as CVAT does) -> review in FiftyOne -> retrain from the export -> the gate decides
the promotion -> cards and a Zenodo deposit for the version -> a task with the user's own
labels starts a family -> the gateway serves the live versions.
"""

from __future__ import annotations

import json
from pathlib import Path

import requests
from PIL import Image

from imagine_assist.functions.catalog import get_spec, load_function
from imagine_assist.home import Home
from imagine_assist.models.registry import Registry
from imagine_assist.models.store import family_dir
from imagine_assist.predict import predict_to_files
from imagine_assist.samples import FISH_SPECIES, generate_fish, with_labels, write_cvat_export

LOOP_SEED = 2025  # a new batch of images, used by no training recipe
DEMO_EPOCHS = 3  # a short round so the demo takes a minute; the recipe's own is longer


OWN_FAMILY = "reef"  # the demo's user family: an observatory's own species list


def bring_own_labels(loop: Path, samples: list, models_dir: str | None) -> str | None:
    """`families create` on the corrected task labelled by species, as an observatory with
    its own species list would export it. Returns the new function's id."""
    from imagine_assist.families import all_families
    from imagine_assist.training.new_family import create_family

    function_id = f"{OWN_FAMILY}-detector"
    if OWN_FAMILY in all_families():
        print(f"family {OWN_FAMILY} exists in this home from an earlier demo: serving it as it is")
        return function_id
    export = write_cvat_export(loop / "own-labels-task.zip", samples, FISH_SPECIES)
    created = create_family(
        OWN_FAMILY, [export], loop / "work" / "own-labels", models_dir, epochs=DEMO_EPOCHS
    )
    result = created.result
    print(
        f"`imagine-assist families create {OWN_FAMILY} --from {export.name}`: labels "
        f"{list(created.family.labels)}, started from the {created.base} model; "
        f"{result.version.name} mAP50 {result.card['metrics']['candidate']['mAP50']:.3f} on "
        f"{result.card['evaluated_on']['images']} held-out images (synthetic; "
        f"{result.card['evaluated_on']['boxes']} boxes, too few to trust); family file "
        f"{created.path}; served as {function_id}"
    )
    return function_id


def run_loop_demo(out: Path, models_dir: str | None = None, images: int = 40) -> None:
    from imagine_assist.nuclio.gateway import Gateway
    from imagine_assist.nuclio.serve import background_server, build_hosts
    from imagine_assist.publish import write_publication
    from imagine_assist.publish.metadata import default_path
    from imagine_assist.review.review import review_export
    from imagine_assist.training.retrain import retrain

    loop = out / "loop"
    samples = list(generate_fish(images, seed=LOOP_SEED, fractions=(1, 0, 0)))
    (loop / "images").mkdir(parents=True, exist_ok=True)
    for sample in samples:
        Image.fromarray(sample.image).save(loop / "images" / sample.name, quality=92)

    print("\n== the loop: 1. pre-annotate a new task")
    function = load_function("fish-detector", models_dir=models_dir)
    report = predict_to_files(function, loop / "images", loop / "pre-annotations", previews=False)
    print(f"{sum(report.totals.values())} boxes -> {report.cvat_xml} (upload to the CVAT task)")

    print("== 2. people correct them in CVAT and export the task (simulated: the ground truth)")
    export = write_cvat_export(
        loop / "corrected-task.zip", with_labels(samples, lambda fish: "fish"), ["fish"]
    )
    print(f"{export} (CVAT for images 1.1)")

    print("== 3. review the corrections against the model in FiftyOne")
    work = loop / "work"
    _, summary = review_export(export, "fish-detector", loop / "review", work, models_dir)
    facts = json.loads(summary.summary.read_text())
    print(
        f"mAP50 {facts['mAP50']:.3f}, TP {facts['tp']}, FP {facts['fp']}, FN {facts['fn']}; "
        f"plots in {summary.summary.parent}; look first at {', '.join(summary.flagged[:3])}"
    )

    print(f"== 4. retrain from the export ({DEMO_EPOCHS} epochs for the demo) and gate it")
    registry = Registry(family_dir("fish", models_dir).parent)
    result = retrain("fish", [export], registry, work / "train", epochs=DEMO_EPOCHS)
    metrics = result.card["metrics"]
    print(
        f"{result.version.name}: mAP50 {metrics['candidate']['mAP50']:.3f} against "
        f"{(metrics['deployed'] or {}).get('mAP50', 0):.3f} for the live model on the same "
        f"{result.card['evaluated_on']['images']} held-out images; gate: "
        + "; ".join(result.gate["reasons"])
    )
    live = registry.current("fish")
    print(
        f"promoted {result.version.name}"
        if result.promoted
        else f"not promoted: {live.name if live else 'the installed model'} stays live "
        f"(`imagine-assist models promote fish {result.version.name} --force` overrides)"
    )

    print("== 5. cards and a Zenodo deposit for the new version (upload is a separate step)")
    metadata = default_path(Home.resolve().root, "fish")
    publication = write_publication(
        registry, "fish", loop / "publish", metadata, version_name=result.version.name
    )
    print(
        f"{publication.folder}: dataset-card.md, model-card.md, zenodo-deposit.json, "
        f"{publication.dataset_zip.name}; still to fill in {metadata} "
        "(`imagine-assist publish template fish`): "
        + ", ".join(gap.field for gap in publication.missing)
    )
    for problem in publication.deposit_problems:  # creators, above all: Zenodo requires them
        print(f"zenodo would refuse the deposit: {problem}")

    print("== 6. bring your own labels: a task labelled by species starts a family")
    own = bring_own_labels(loop, samples, models_dir)

    print("== 7. serve the live models to CVAT")
    served = ["fish-detector", "litter-detector", *([own] if own else [])]
    gateway = Gateway(build_hosts(served, models_dir), port=0)
    with background_server(gateway) as url:
        ready = requests.get(f"{url}/api/healthz", timeout=30).json()
    for name, model in ready["models"].items():
        print(f"{name}: {ready['functions'][name]}, model {model['version']} ({model['model']})")
    timeout = max(get_spec(name).event_timeout_s for name in ready["models"])
    print(
        "\nTo annotate in CVAT with these models: run `imagine-assist serve --host <address "
        "CVAT's\ncontainers reach, e.g. the Docker bridge> --port 8070` on this machine, set on "
        "both\ncvat_server and cvat_worker_annotation (README, 'Use with CVAT without Nuclio'):\n"
        '  CVAT_SERVERLESS: "1"  (cvat_server only)\n'
        '  CVAT_NUCLIO_HOST: "host.docker.internal"\n'
        '  CVAT_NUCLIO_PORT: "8070"\n'
        '  CVAT_NUCLIO_INVOKE_METHOD: "dashboard"\n'
        f'  CVAT_NUCLIO_DEFAULT_TIMEOUT: "{timeout}"\n'
        '  extra_hosts: ["host.docker.internal:host-gateway"]\n'
        "and restart them: the functions appear under AI Tools and Automatic annotation."
    )
