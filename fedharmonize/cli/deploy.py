"""``fedharmonize deploy``: the real Flower Deployment Engine.

``deploy local`` rehearses it on this machine; ``deploy app`` writes the app folder
that the consortium's operator submits with ``flwr run`` in a real deployment.
"""

import argparse
import time
from pathlib import Path

from common.errors import InputError
from fedharmonize.cli.options import add_federation_options, federation_run_config

DESCRIPTION = """\
Run the federation the way a consortium runs it, with real Flower processes,
but every one of them on this machine and bound to 127.0.0.1:

  flower-superlink    the coordinator: Fleet, Control and Runtime APIs on one port
  flower-supernode    one per site folder, started with --node-config
                      'site-name="..." data-path="..."'; it runs the ClientApp
                      for each message in a fresh process that reads only its
                      own site folder
  flwr run            submits the app; its ServerApp runs next to the SuperLink

This is the rehearsal for a real deployment (docs/deployment.md, docker/): the
same processes, messages and files, without TLS because nothing leaves the
loopback interface. Flower's telemetry and update checks are off, and nothing
is installed at run time. Every process started here is stopped by its PID when
the run ends, fails, times out or is interrupted with Ctrl-C.
"""

EPILOG = """\
ports (all on 127.0.0.1):
  P          the SuperLink (--port-base P; default: any free port)
  P+1..P+N   each SuperNode's local Runtime API, used by its ClientApp processes

the run folder:
  RUN/model/                  the harmonizer (safetensors + JSON with provenance)
  RUN/received/<site>/        the model as each SuperNode verified and stored it
  RUN/ledger/<site>.jsonl     every reply each site sent: keys, shapes, bytes
  RUN/checkpoints/            one checkpoint per round
  RUN/metrics.jsonl           per-round metrics, per site and aggregated
  RUN/logs/                   superlink.log, supernode-<site>.log, serverapp.log,
                              flwr-run.log: read these when a run fails
  RUN/app/, RUN/flwr-home/    the submitted app and the private Flower config

examples:
  fedharmonize phantoms demo-phantoms
  fedharmonize deploy local --sites-root demo-phantoms/sites --rounds 1 --out runs/deployed
  fedharmonize deploy local --sites-root /data/sites --port-base 9400 --timeout 7200 --out runs/r
"""


APP_DESCRIPTION = """\
Write the Flower app folder that 'flwr run' submits to a SuperLink: a single
pyproject.toml naming the ServerApp (server.app:app) and the ClientApp
(client.app:app) and declaring every run-config key, so that any of them can be
set with --run-config. It holds no code: the SuperLink and every SuperNode run
the fedharmonize installed in their own image, and nothing is installed at run
time.

example (operator, with a SuperLink connection 'consortium' in $FLWR_HOME/config.toml):
  fedharmonize deploy app fed-app
  flwr run fed-app consortium --run-config run-config.toml --stream
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    deploy = subparsers.add_parser(
        "deploy",
        help="run the federation with real Flower processes (SuperLink, SuperNodes, flwr run)",
        description="Run the federation on Flower's Deployment Engine (docs/deployment.md).",
        epilog="Run 'fedharmonize deploy ACTION --help' for the options of one action.",
    )
    actions = deploy.add_subparsers(dest="action", metavar="ACTION", required=True)
    app = actions.add_parser(
        "app",
        help="write the code-free Flower app folder that 'flwr run' submits",
        description=APP_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    app.add_argument("out", type=Path, metavar="DIR", help="folder to write pyproject.toml into")
    app.set_defaults(handler=run_app)
    parser = actions.add_parser(
        "local",
        help="a SuperLink and one SuperNode per site, all on 127.0.0.1",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--sites-root",
        required=True,
        type=Path,
        metavar="DIR",
        help="one SITE/reference/*.nii[.gz] folder per site; each gets its own SuperNode",
    )
    add_federation_options(parser)
    parser.add_argument(
        "--out", type=Path, default=Path("fedharmonize-deploy"), metavar="RUN", help="run folder"
    )
    parser.add_argument(
        "--port-base",
        type=int,
        metavar="P",
        help="SuperLink on P, SuperNodes on P+1..P+N (default: free ports)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=3600.0,
        metavar="S",
        help="stop everything if the run has not finished after S seconds (default: %(default)s)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from simulations.deploy_local import deploy_local

    if (args.out / "model").exists():
        raise InputError(
            f"{args.out / 'model'}: a finished run is already here; choose another --out"
        )
    run_config = federation_run_config(args)
    started = time.perf_counter()
    result = deploy_local(
        args.sites_root, args.out, run_config, port_base=args.port_base, timeout_s=args.timeout
    )
    elapsed = time.perf_counter() - started
    print(f"run {result.run_id} finished in {elapsed:.0f} s; every process it started is stopped")
    print(f"model:    {result.model_dir}")
    print(f"received: {result.run_dir / 'received'}/<site>/")
    print(f"ledgers:  {result.run_dir / 'ledger'}")
    print(f"metrics:  {result.run_dir / 'metrics.jsonl'}")
    print(f"logs:     {result.logs_dir}")
    return 0


def run_app(args: argparse.Namespace) -> int:
    from simulations.deploy_local import write_app

    print(f"Flower app written to {write_app(args.out) / 'pyproject.toml'}")
    return 0
