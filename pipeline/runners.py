"""Runner choice and Beam options.

``direct`` is Beam's Python FnApiRunner, named explicitly: Beam's DirectRunner would first try
to download the Prism binary and silently fall back, which makes local runs depend on the
network. One worker runs in-process; N workers run as N local SDK worker processes.
"""

from __future__ import annotations

import sys

from apache_beam.options.pipeline_options import PipelineOptions

from pipeline.config import ConfigError

LOCAL_RUNNERS = ("direct",)


def is_local(runner: str) -> bool:
    return runner in LOCAL_RUNNERS


def unknown_beam_flags(flags: list[str]) -> list[str]:
    """Flags that no Beam option class knows (a typo would otherwise be dropped silently)."""
    if not flags:
        return []
    opts = PipelineOptions(flags)
    known = opts.get_all_options(retain_unknown_options=False)
    with_unknown = opts.get_all_options(retain_unknown_options=True)
    return sorted(f"--{k}" for k in with_unknown if k not in known)


def make_runner_and_options(runner: str, workers: int, beam_flags: list[str]):
    bad = unknown_beam_flags(beam_flags)
    if bad:
        raise ConfigError(f"unknown option(s): {' '.join(bad)} (not a Thresher flag nor a Beam pipeline option)")
    if runner == "direct":
        from apache_beam.runners.portability.fn_api_runner import FnApiRunner
        from apache_beam.transforms.environments import SubprocessSDKEnvironment

        options = PipelineOptions(beam_flags, direct_num_workers=workers, direct_running_mode="in_memory")
        if workers == 1:
            return FnApiRunner(), options
        # Beam's multi_processing mode with our worker entry point (pipeline/worker.py: quiet logs)
        env = SubprocessSDKEnvironment.from_command_string(f"{sys.executable} -m pipeline.worker")
        return FnApiRunner(default_environment=env), options
    if runner == "portable":
        return "PortableRunner", PipelineOptions(beam_flags)
    return runner, PipelineOptions(beam_flags)
