"""``synthfactory serve``: a Prefect server (unless one is set), a worker for the work pool
and the dashboard, with the dashboard's sign-in."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from synthfactory.errors import ConfigError
from synthfactory_flows.cli_common import friendly_errors

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def print_sign_in(host: str, port: int, code: str | None, token: str, given: bool) -> None:
    """The dashboard's URL, its one-time sign-in link and the token (unless it was given)."""
    shown = f"[{host}]" if ":" in host else host
    base = f"http://{shown}:{port}/"
    click.echo(f"dashboard:    {base}")
    click.echo(f"sign in:      {base}login?code={code} (works once)")
    click.echo(f"access token: {'(the one given)' if given else token}")


def check_exposure(host: str, remote: bool, allow_remote: bool, token: str | None) -> None:
    """Binding beyond loopback needs --allow-remote and a token: a ConfigError otherwise."""
    if remote and not allow_remote:
        raise ConfigError(
            f"--host {host} is reachable from other machines",
            fix="add --allow-remote and set --token, or bind to 127.0.0.1",
        )
    if remote and not token:
        raise ConfigError(
            "--allow-remote needs an access token",
            fix="pass --token or set SYNTHFACTORY_DASHBOARD_TOKEN",
        )


@click.command()
@click.option(
    "--datasets",
    "roots",
    multiple=True,
    required=True,
    help="Folder or s3:// prefix holding datasets (repeatable).",
)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8765, show_default=True, help="Dashboard port.")
@click.option(
    "--prefect-port",
    default=4200,
    show_default=True,
    help="Port of the Prefect server started when PREFECT_API_URL is not set.",
)
@click.option("--allow-remote", is_flag=True, help="Allow binding beyond loopback.")
@click.option(
    "--token",
    envvar="SYNTHFACTORY_DASHBOARD_TOKEN",
    help="Access token (required with --allow-remote; generated otherwise).",
)
@click.option(
    "--allowed-host",
    "allowed_hosts",
    multiple=True,
    help="Another name the dashboard is reached by, e.g. its DNS name (repeatable). "
    "Requests with any other Host header are refused (loopback names and --host are "
    "always allowed; with --host 0.0.0.0 also this machine's names and IP addresses).",
)
@click.option("--no-worker", is_flag=True, help="Do not start a worker for the work pool.")
@click.option("--worker-limit", type=int, help="Flow runs one worker executes at once.")
@click.option("--logs", default=".synthfactory/logs", show_default=True, type=click.Path())
@friendly_errors
def serve(
    roots: tuple[str, ...],
    host: str,
    port: int,
    prefect_port: int,
    allow_remote: bool,
    token: str | None,
    allowed_hosts: tuple[str, ...],
    no_worker: bool,
    worker_limit: int | None,
    logs: str,
) -> None:
    """Start a Prefect server (unless PREFECT_API_URL is set), a worker and the dashboard.

    The access token is never put in a URL: open the one-time sign-in link printed at
    start (it sets a session cookie and is void once used), or sign in on the page with
    the token; scripts send it as `Authorization: Bearer TOKEN`."""
    import secrets
    import signal

    import uvicorn

    from synthfactory_flows.dashboard.app import create_app
    from synthfactory_flows.serve import Services, start_backend

    remote = host not in LOOPBACK
    check_exposure(host, remote, allow_remote, token)
    given_token = token is not None
    token = token or secrets.token_urlsafe(16)
    env = dict(os.environ)
    env.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    env.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    services = Services()
    log_dir = Path(logs)
    # uvicorn re-raises SIGTERM after its own shutdown; make that an exit that runs `finally`
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        start_backend(
            services,
            env,
            prefect_port=prefect_port,
            logs=log_dir,
            worker=not no_worker,
            worker_limit=worker_limit,
            echo=click.echo,
        )
        app = create_app(
            list(roots),
            token=token,
            require_token_to_read=remote,
            host=host,
            allowed_hosts=allowed_hosts,
        )
        print_sign_in(host, port, app.state.access.login_code, token, given_token)
        uvicorn.run(app, host=host, port=port, log_level="warning")
    finally:
        services.stop()
