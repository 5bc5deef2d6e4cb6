"""imagine-assist: marine annotation models served to CVAT, reviewed in FiftyOne, retrained
from CVAT exports.

CVAT, wherever a command reaches it (loop, track --upload-to-task, review --send-to-cvat):
--cvat URL or CVAT_HOST for the server, and CVAT_ACCESS_TOKEN, or CVAT_USER and
CVAT_PASSWORD, for the login."""

from __future__ import annotations

import argparse
import logging
import os
import select
import sys

import imagine_assist
from imagine_assist.app import (
    bundle,
    demo,
    deploy,
    evaluate,
    families,
    functions,
    loop,
    models,
    predict,
    publish,
    review,
    samples,
    separate,
    serve,
    track,
    train,
    usage,
)
from imagine_assist.app import next as next_command  # not `next`: the builtin
from imagine_assist.app.common import (
    HOME_HELP,
    HelpFormatter,
    check_output_folder,
    common_options,
    connection_problem,
)
from imagine_assist.errors import UserError
from imagine_assist.home import HOME_ENV

COMMANDS = [
    families,
    functions,
    samples,
    train,
    bundle,
    deploy,
    loop,
    next_command,
    review,
    evaluate,
    models,
    publish,
    usage,
    predict,
    serve,
    track,
    separate,
    demo,
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="imagine-assist", description=__doc__, formatter_class=HelpFormatter
    )
    parser.add_argument(
        "--version", action="version", version=f"imagine-assist {imagine_assist.__version__}"
    )
    parser.add_argument("--home", metavar="DIR", help=HOME_HELP)
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    parents = [common_options()]
    for command in COMMANDS:
        subparser = command.add_parser(subparsers, parents)
        # one look for every command's help, whatever the module chose
        subparser.formatter_class = HelpFormatter
    return parser


def _quiet_retries(record: logging.LogRecord) -> bool:
    return not record.getMessage().startswith("Retrying")


def _stdout_closed() -> bool:
    """Whether stdout is a pipe whose reader has gone (poll reports an error on it): then a
    BrokenPipeError is ours to end on quietly, not a server's connection."""
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(event & (select.POLLERR | select.POLLHUP) for _, event in poller.poll(0))
    except (AttributeError, OSError, ValueError):  # no poll here, or stdout is no file
        return False


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.home:
        os.environ[HOME_ENV] = args.home
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not args.verbose:
        # A CVAT that does not answer is one error line, not a warning per retry. A filter,
        # since cvat-sdk sets urllib3's log level itself when it makes a client.
        logging.getLogger("urllib3.connectionpool").addFilter(_quiet_retries)
    try:
        if getattr(args, "out_is_folder", False) and args.out:
            check_output_folder(args.out)
        code = args.run(args)
        sys.stdout.flush()  # here, where a reader gone away is caught, not at exit
        return code
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as error:
        if isinstance(error, BrokenPipeError) and _stdout_closed():
            # The reader went away (`models list fish | head -1`): nothing of ours failed.
            # Later writes to stdout go nowhere, so exiting does not raise again.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 0
        # A server that cannot be reached is the user's to fix, not a bug: one line.
        problem = connection_problem(error)
        if problem is None:
            raise
        # Only the commands with --cvat talk to CVAT; others (publish, usage) reach other servers.
        cvat = (args.cvat or os.environ.get("CVAT_HOST")) if hasattr(args, "cvat") else None
        print(
            f"error: cannot reach {f'CVAT at {cvat}' if cvat else 'a server'}: {problem}",
            file=sys.stderr,
        )
        return 2


if __name__ == "__main__":
    sys.exit(main())
