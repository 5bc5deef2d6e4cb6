"""The FiftyOne App on loopback, opened on the review's saved view."""

from __future__ import annotations


def serve_app(dataset, view_name: str, port: int, wait: bool = True):
    """Serve the App on 127.0.0.1 only (it has no login); block until Ctrl-C when `wait`."""
    from imagine_assist.training.exports import fiftyone

    fo = fiftyone()
    session = fo.launch_app(
        dataset,
        view=dataset.load_saved_view(view_name),
        address="127.0.0.1",
        port=port,
        remote=True,  # do not try to open a browser here
        auto=False,
    )
    print(f"FiftyOne App: http://127.0.0.1:{port}/datasets/{dataset.name} (Ctrl-C to stop)")
    if wait:
        session.wait(-1)
    return session
