"""What several commands share: the help format, the options every command takes, family
names, thresholds, CVAT's address and login, reloading a running gateway, and loading a box
detector."""

from __future__ import annotations

import argparse
import math
import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

from imagine_assist.errors import UserError
from imagine_assist.home import HOME_ENV

HOME_HELP = (
    f"state directory: models, families, runs, logs (default: ${HOME_ENV}, else "
    "~/.local/share/imagine-assist)"
)
CVAT_LOGIN = "log in with CVAT_ACCESS_TOKEN, or CVAT_USER and CVAT_PASSWORD"
MODELS_HELP = "models directory (default: <home>/models)"


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Every option that takes a value ends its help with its default. One whose default is
    worked out when the command runs says it in words, "(default: <home>/models)", in its
    help text; one that does nothing unless given shows "(default: none)". Flags are off
    unless given and say nothing.

    A description or epilog with line breaks of its own (examples) is kept as written; a
    one-line one is wrapped to the terminal."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if "(default" in text or action.default is argparse.SUPPRESS or action.required:
            return text
        if action.nargs == 0 or not action.option_strings:  # flags; positionals
            return text if action.default in (None, [], False) else super()._get_help_string(action)
        if action.default is None or action.default == []:
            return f"{text} (default: none)"
        return super()._get_help_string(action)

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if "\n" in text.strip():
            return super()._fill_text(text, width, indent)
        return argparse.HelpFormatter._fill_text(self, text, width, indent)


def add_export_options(parser: argparse.ArgumentParser, exports: bool = True, val: bool = True):
    """--from, --val and --map, the same for every command that reads CVAT exports."""
    if exports:
        parser.add_argument(
            "--from",
            dest="exports",
            action="append",
            default=[],
            metavar="EXPORT_ZIP",
            help="a CVAT export (images 1.1, video 1.1, COCO 1.0, Ultralytics YOLO); repeat "
            "for several",
        )
    if val:
        parser.add_argument(
            "--val",
            dest="val_exports",
            action="append",
            default=[],
            metavar="EXPORT_ZIP",
            help="a fixed validation export, held out whole: the gate compares the models on "
            "it; repeat for several (default: a share of --from's images, chosen by content)",
        )
    parser.add_argument(
        "--map",
        dest="label_map",
        action="append",
        default=[],
        metavar="SOURCE=TARGET",
        help="rename an export label to one of the family's, e.g. Fish=fish, or give a "
        "YAML file of such pairs; repeat (default: the export's labels as they are)",
    )


def common_options() -> argparse.ArgumentParser:
    """Options every subcommand takes, so they work after it too (`models list fish --home
    X`). SUPPRESS keeps a subcommand from overwriting what was given before it."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--home", metavar="DIR", default=argparse.SUPPRESS, help=HOME_HELP)
    parent.add_argument(
        "-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="log progress"
    )
    return parent


@lru_cache(maxsize=1)
def _builtin_family_names() -> tuple[str, ...]:
    from imagine_assist.families import builtin_families

    return tuple(builtin_families())


def family_help(what: str = "the family") -> str:
    """Help for a FAMILY argument. Families are checked when the command runs, not by
    argparse: `--home` may be given after the name and changes which families exist."""
    return (
        f"{what}: {', '.join(_builtin_family_names())} (built in), or one of yours in "
        "<home>/families/ (`imagine-assist families list`)"
    )


def threshold_value(text: str) -> float:
    """A --threshold, refused by argparse outside the range every kind of function shares;
    the function's own rule checks it again once the function is known (`checked_threshold`)."""
    try:
        from imagine_assist.functions.spec import THRESHOLD_RANGE
    except ImportError:  # a spec module without a shared range: CVAT's own [0, 1]
        THRESHOLD_RANGE = (0.0, 1.0)
    low, high = THRESHOLD_RANGE
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"threshold must be a number, got {text!r}") from None
    if math.isnan(value) or not low <= value <= high:
        raise argparse.ArgumentTypeError(f"threshold must lie in [{low:g}, {high:g}], got {text}")
    return value


def checked_threshold(spec, value: float | None) -> float | None:
    """`value` checked by the function's own rule (None keeps the function's default)."""
    if value is None:
        return None
    check = getattr(spec, "check_threshold", None)
    if check is not None:
        return check(value)  # a UserError saying what the threshold means for this kind
    if not 0.0 <= value <= 1.0:
        raise UserError(f"{spec.id}: --threshold must lie in [0, 1], got {value:g}")
    return value


def add_cvat_option(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "--cvat",
        metavar="URL",
        help=f"CVAT server {what}; {CVAT_LOGIN} (default: $CVAT_HOST)",
    )


# review --send-to-cvat goes through FiftyOne's CVAT backend, which takes no token
FIFTYONE_CVAT_LOGIN = (
    "log in with CVAT_USER and CVAT_PASSWORD (FiftyOne's CVAT backend takes no token)"
)


def cvat_url(given: str | None, login: str = CVAT_LOGIN) -> str:
    url = given or os.environ.get("CVAT_HOST")
    if not url:
        raise UserError(f"name the CVAT server with --cvat URL (or CVAT_HOST), and {login}")
    return url


def cvat_login() -> dict:
    """cvat-sdk's login arguments from the environment: a personal access token, or a user
    and password."""
    token = os.environ.get("CVAT_ACCESS_TOKEN")
    user, password = os.environ.get("CVAT_USER"), os.environ.get("CVAT_PASSWORD")
    if token:
        return {"access_token": token}
    if user and password:
        return {"credentials": (user, password)}
    raise UserError("set CVAT_ACCESS_TOKEN, or CVAT_USER and CVAT_PASSWORD, to reach CVAT")


def fiftyone_cvat_login(url: str) -> None:
    """Give FiftyOne's CVAT backend (review --send-to-cvat) the same login as everything
    else. That backend logs in with a user and password only: a token is not enough."""
    user, password = os.environ.get("CVAT_USER"), os.environ.get("CVAT_PASSWORD")
    if not (user and password):
        raise UserError(
            "review --send-to-cvat goes through FiftyOne's CVAT backend, which logs in with a "
            "user and password only: set CVAT_USER and CVAT_PASSWORD"
            + (" (CVAT_ACCESS_TOKEN is not enough)" if os.environ.get("CVAT_ACCESS_TOKEN") else "")
        )
    os.environ["FIFTYONE_CVAT_URL"] = url
    os.environ["FIFTYONE_CVAT_USERNAME"] = user
    os.environ["FIFTYONE_CVAT_PASSWORD"] = password


def connection_problem(error: BaseException) -> str | None:
    """One line on why a server could not be reached, or None when `error` is something
    else. cvat-sdk raises urllib3's errors, requests and FiftyOne raise requests'."""
    import requests
    import urllib3

    unreachable = (
        requests.ConnectionError,
        requests.Timeout,
        urllib3.exceptions.HTTPError,
        ConnectionError,
        TimeoutError,
    )
    if not isinstance(error, unreachable):
        return None
    inner: BaseException = error
    for _ in range(5):  # MaxRetryError -> NewConnectionError -> the socket's error
        deeper = getattr(inner, "reason", None)
        if not isinstance(deeper, BaseException) and inner.args:
            deeper = inner.args[0]
        if not isinstance(deeper, BaseException):
            break
        inner = deeper
    text = " ".join(str(inner).split()) or type(inner).__name__
    # urllib3 starts with the connection object: "HTTPConnection(host=..., port=9): ..."
    return re.sub(r"^(<[^>]*>|\w+\([^)]*\)): ", "", text)


def api_problem(error: BaseException, url: str) -> str | None:
    """One line for an error answer of CVAT's REST API, or None for anything else."""
    try:
        from cvat_sdk.api_client.exceptions import ApiException
    except ImportError:
        return None
    if not isinstance(error, ApiException):
        return None
    status = f"{error.status} {error.reason or ''}".strip()
    if error.status in (401, 403):
        return (
            f"CVAT at {url} refused the login ({status}); check CVAT_ACCESS_TOKEN, or "
            "CVAT_USER and CVAT_PASSWORD"
        )
    body = " ".join(str(error.body or "").split())[:200]
    return f"CVAT at {url} answered {status}" + (f": {body}" if body else "")


class CvatUnreachable(UserError):
    """CVAT did not answer at all: the address, the network or the server is down."""


@contextmanager
def reaching_cvat(url: str) -> Iterator[None]:
    """Turn a failure to reach or use CVAT into one line for the user, not a traceback."""
    try:
        yield
    except UserError:
        raise
    except Exception as error:
        problem = connection_problem(error)
        if problem is not None:
            raise CvatUnreachable(f"cannot reach CVAT at {url}: {problem}") from None
        answer = api_problem(error, url)
        if answer is not None:
            raise UserError(answer) from None
        if type(error).__name__ == "BackgroundRequestException":  # cvat_sdk.core.exceptions
            # a job CVAT ran for us (an export, a task's data) that failed on its side
            raise UserError(f"CVAT at {url} could not finish its job: {error}") from None
        raise


@contextmanager
def cvat_client(url: str):
    """A logged-in cvat-sdk client; a CVAT that cannot be reached, or refuses, is a
    UserError, within the `with` block too."""
    from cvat_sdk import make_client

    login = cvat_login()
    with reaching_cvat(url):
        client = make_client(url, **login)
        with client as entered:
            yield entered


def reload_gateway(gateway: str, family: str) -> None:
    """Ask a running gateway to reload every function of the family."""
    import requests

    from imagine_assist.functions.catalog import functions_of_family
    from imagine_assist.nuclio.gateway import client_headers

    not_served = []
    for spec in functions_of_family(family):
        url = f"{gateway.rstrip('/')}/api/functions/{spec.id}/reload"
        try:
            response = requests.post(url, headers=client_headers(), timeout=30)
        except requests.RequestException as error:
            raise UserError(f"the gateway at {gateway} did not answer: {error}") from None
        if response.status_code == 404:
            not_served.append(spec.id)  # this gateway does not serve that function
            continue
        if response.status_code >= 400:
            raise UserError(f"{url}: {response.status_code} {response.text[:200]}")
        print(f"reloaded {spec.id} on {gateway}")
    if not_served:
        # Said, not raised: the version is promoted either way. A gateway started before
        # the family existed (or a URL that is no gateway) must not look reloaded.
        print(
            f"{gateway} does not serve {', '.join(not_served)}: nothing reloaded there; "
            "restart the gateway (`imagine-assist serve`) to serve it",
            file=sys.stderr,
        )


def box_detector(function_id: str, *args):
    """A function that answers with boxes from a model: what predict and track run."""
    from imagine_assist.functions.catalog import load_function
    from imagine_assist.functions.detector import DetectorFunction

    function = load_function(function_id, *args)
    if not isinstance(function, DetectorFunction):
        raise UserError(
            f"{function_id} is not a box detector; predict and track run a family's detector "
            "(`imagine-assist functions list`; plankton: imagine-assist separate)"
        )
    return function


def check_output_folder(out: str) -> None:
    """Refuse an --out that cannot become a folder, before any work: a file there, a file
    where one of its parents should be, or a place the user may not write. Otherwise the
    command would run for minutes and end in a traceback when it first writes."""
    path = os.path.abspath(out)
    if os.path.exists(path) and not os.path.isdir(path):
        raise UserError(f"--out {out} is a file, not a folder")
    parent = path
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        raise UserError(f"--out {out} cannot be made: {parent} is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UserError(f"--out {out} cannot be written: no write permission in {parent}")


def positive_int(text: str) -> int:
    """An argparse type for counts that must be 1 or more (epochs, images): 0 would quietly
    mean "the recipe's default" further down, and a negative one fail after the data is
    prepared."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {value}")
    return value


def ratio_text(value: float | None) -> str:
    """A precision, recall or share to three places; "n/a" where it is undefined (0/0)."""
    return "n/a" if value is None else f"{value:.3f}"


def check_device(device: str) -> None:
    """`cpu`, or CUDA devices this machine has (`0`, `0,1`, `cuda:0`)."""
    if device == "cpu":
        return
    indices = device.removeprefix("cuda:").split(",")
    if not all(index.strip().isdigit() for index in indices):
        raise UserError(f"--device is cpu or a CUDA device number such as 0, not {device!r}")
    import torch

    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    missing = [i for i in indices if int(i) >= count]
    if missing:
        have = f"GPUs 0-{count - 1}" if count else "no CUDA GPU"
        raise UserError(f"--device {device} asks for a GPU this machine lacks ({have}); "
                        "use --device cpu")  # fmt: skip
