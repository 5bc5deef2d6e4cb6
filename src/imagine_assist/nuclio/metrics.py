"""Request counters and latency per function, in Prometheus' text format.

A request whose client closed the connection before its answer is counted with code 499
(nginx's "client closed request"), so a disconnect is never mistaken for a fault of ours.
"""

from __future__ import annotations

import bisect
import threading
from collections import defaultdict

BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 120.0)


class GatewayMetrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: dict[tuple[str, int], int] = defaultdict(int)
        self._latency_sum: dict[str, float] = defaultdict(float)
        self._latency_count: dict[str, int] = defaultdict(int)
        self._buckets: dict[str, list[int]] = defaultdict(lambda: [0] * len(BUCKETS))

    def observe(self, function: str, status: int, seconds: float) -> None:
        with self._lock:
            self._requests[(function, status)] += 1
            self._latency_sum[function] += seconds
            self._latency_count[function] += 1
            index = bisect.bisect_left(BUCKETS, seconds)
            if index < len(BUCKETS):
                self._buckets[function][index] += 1

    def requests(self, function: str) -> dict[int, int]:
        with self._lock:
            return {code: n for (name, code), n in self._requests.items() if name == function}

    def render(self) -> str:
        with self._lock:
            lines = [
                "# HELP imagine_assist_requests_total Function invocations by HTTP status.",
                "# TYPE imagine_assist_requests_total counter",
            ]
            for (function, code), count in sorted(self._requests.items()):
                lines.append(
                    f'imagine_assist_requests_total{{function="{function}",code="{code}"}} {count}'
                )
            lines += [
                "# HELP imagine_assist_errors_total Invocations answered with a 4xx or 5xx "
                "status (499: the client left before its answer).",
                "# TYPE imagine_assist_errors_total counter",
            ]
            errors: dict[str, int] = defaultdict(int)
            for (function, code), count in self._requests.items():
                errors[function] += count if code >= 400 else 0
            for function, count in sorted(errors.items()):
                lines.append(f'imagine_assist_errors_total{{function="{function}"}} {count}')
            lines += [
                "# HELP imagine_assist_request_seconds Invocation latency.",
                "# TYPE imagine_assist_request_seconds histogram",
            ]
            for function in sorted(self._latency_count):
                cumulative = 0
                for bound, count in zip(BUCKETS, self._buckets[function], strict=True):
                    cumulative += count
                    lines.append(
                        f'imagine_assist_request_seconds_bucket{{function="{function}",'
                        f'le="{bound}"}} {cumulative}'
                    )
                total = self._latency_count[function]
                name = f'{{function="{function}"}}'
                lines.append(
                    f'imagine_assist_request_seconds_bucket{{function="{function}",'
                    f'le="+Inf"}} {total}'
                )
                lines.append(
                    f"imagine_assist_request_seconds_sum{name} {self._latency_sum[function]:.6f}"
                )
                lines.append(f"imagine_assist_request_seconds_count{name} {total}")
            return "\n".join(lines) + "\n"
