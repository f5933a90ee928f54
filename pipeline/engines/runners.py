"""Runner choice and Beam options.

``direct`` is Beam's Python FnApiRunner, named explicitly: Beam's DirectRunner would first try
to download the Prism binary and silently fall back, which makes local runs depend on the
network. One worker runs in-process; N workers run as N local SDK worker processes.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from apache_beam.options.pipeline_options import PipelineOptions

from thresher.pipeline.config import LOCAL_RUNNERS, ConfigError
from thresher.pipeline.interrupts import WORKER_MODULE

# The folder holding this copy's `pipeline` folder (pipeline/engines/ is two below): a source tree, or site-packages
PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])


def is_local(runner: str) -> bool:
    return runner in LOCAL_RUNNERS


def worker_command() -> str:
    """The shell command of a local SDK worker process: pipeline/engines/worker.py of this installation
    (Thresher's import names are namespaced, ``thresher.*``, so a user's own ``pipeline`` package in
    the current folder is not imported instead).

    The worker starts with Ctrl-C ignored and takes it (`interrupts.end_quietly`) once Python is up:
    a SIGINT that lands while the interpreter still imports its site module would otherwise print
    "Fatal Python error" and a traceback under the driver's one line (the driver kills a worker
    that missed it, pipeline/interrupts.py)."""
    return f"trap '' INT; exec {shlex.quote(sys.executable)} -m {WORKER_MODULE}"


def unknown_beam_flags(flags: list[str]) -> list[str]:
    """Flags that no Beam option class knows (a typo would otherwise be dropped silently)."""
    if not flags:
        return []
    opts = PipelineOptions(flags)
    known = opts.get_all_options(retain_unknown_options=False)
    with_unknown = opts.get_all_options(retain_unknown_options=True)
    return sorted(f"--{k}" for k in with_unknown if k not in known)


def make_runner_and_options(runner: str, workers: int, beam_flags: list[str]):
    """Beam's runner and options."""
    bad = unknown_beam_flags(beam_flags)
    if bad:
        raise ConfigError(f"unknown option(s): {' '.join(bad)} (not a Thresher flag nor a Beam pipeline option)")
    if runner == "direct":
        from apache_beam.runners.portability.fn_api_runner import FnApiRunner
        from apache_beam.transforms.environments import SubprocessSDKEnvironment

        options = PipelineOptions(beam_flags, direct_num_workers=workers, direct_running_mode="in_memory")
        if workers == 1:
            return FnApiRunner(), options
        # Beam's multi_processing mode with our worker entry point (pipeline/engines/worker.py: quiet logs)
        env = SubprocessSDKEnvironment.from_command_string(worker_command())
        return FnApiRunner(default_environment=env), options
    if runner in ("portable", "spark", "flink"):  # spark, flink: the job server's endpoint comes when it starts
        return "PortableRunner", PipelineOptions(beam_flags)
    if runner == "DataflowRunner":
        return runner, PipelineOptions(dataflow_flags(beam_flags))
    return runner, PipelineOptions(beam_flags)


def _flag_given(flags: list[str], name: str) -> bool:
    return any(f == f"--{name}" or f.startswith(f"--{name}=") for f in flags)


def dataflow_flags(flags: list[str]) -> list[str]:
    """Dataflow workers run the custom SDK image (docker/Dockerfile.worker: Beam, Thresher, models)
    and, when Thresher runs from a source tree, this tree's code staged as a wheel, so a job runs
    the code that submitted it."""
    if not _flag_given(flags, "sdk_container_image"):
        raise ConfigError("DataflowRunner needs --sdk_container_image: build docker/Dockerfile.worker, push it, "
                          "and pass its name (the default Beam image lacks Thresher's dependencies and models)")
    flags = list(flags)
    if not _flag_given(flags, "sdk_location"):
        flags.append("--sdk_location=container")  # Beam is in the image: do not stage it again
    if not (_flag_given(flags, "extra_package") or _flag_given(flags, "setup_file")):
        wheel = build_wheel()
        if wheel:
            flags.append(f"--extra_package={wheel}")
    return flags


def source_tree() -> str | None:
    return PACKAGE_ROOT if (Path(PACKAGE_ROOT) / "pyproject.toml").exists() else None


def build_wheel() -> str | None:
    """A wheel of Thresher from its source tree (None when it runs from an installed wheel,
    whose code the worker image already holds)."""
    import glob
    import subprocess
    import tempfile

    root = source_tree()
    if root is None:
        return None
    out = tempfile.mkdtemp(prefix="thresher-wheel-")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", out, root],
                   check=True, capture_output=True)
    return glob.glob(f"{out}/thresher-*.whl")[0]


def is_dry_run(options: PipelineOptions) -> bool:
    return bool(options.get_all_options(retain_unknown_options=True).get("dry_run"))


if __name__ == "__main__":  # the service checks a job's options here, in a process of its own (it never imports Beam)
    print("\n".join(unknown_beam_flags(sys.argv[1:])))
