"""The `parasearch` command: subcommands are registered here, errors become one line on stderr."""

from __future__ import annotations

import os
import sys

import typer

from ..errors import ParasearchError

app = typer.Typer(
    name="parasearch",
    help="Find Pareto-optimal parallel layouts for LLM serving, and say which resource binds.",
    no_args_is_help=True,
    add_completion=True,  # --install-completion / --show-completion for bash, zsh, fish, PowerShell
    pretty_exceptions_enable=False,
)


def version() -> str:
    """The installed distribution's version (package metadata), not a constant in the code."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version("parasearch")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "0+unknown"


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"parasearch {version()}")
        raise typer.Exit()


@app.callback()
def _root(
    show_version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True,
                                      help="Print the version and exit."),
) -> None:
    """Find Pareto-optimal parallel layouts for LLM serving, and say which resource binds."""


def _register() -> None:
    from .calibrate import calibrate
    from .catalog import catalog
    from .deploy import deploy
    from .estimate import estimate
    from .search import search
    from .simulate import simulate
    from .sweep import sweep
    from .trace import trace
    from .validate import validate

    app.command("search")(search)
    app.command("estimate")(estimate)
    app.command("validate")(validate)
    app.command("calibrate")(calibrate)
    app.command("deploy")(deploy)
    app.command("sweep")(sweep)
    app.command("trace")(trace)
    app.command("simulate")(simulate)
    app.command("catalog")(catalog)


_register()


def main(argv: list[str] | None = None) -> int:
    import warnings

    command = typer.main.get_command(app)
    try:
        # Infinite or undefined intermediate values (a placement that serves nothing, an empty
        # fleet's cost) are handled where they are used; NumPy's RuntimeWarnings about them would
        # only reach the user's terminal as noise. (A warnings filter, not np.errstate: importing
        # NumPy here would slow --help and completion.)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            rv = command.main(args=argv if argv is not None else sys.argv[1:], prog_name="parasearch",
                              standalone_mode=False)
        return int(rv or 0) if isinstance(rv, int) else 0
    except ParasearchError as exc:
        typer.echo(f"parasearch: error: {exc.one_line()}", err=True)
        return exc.exit_code
    except KeyboardInterrupt:
        typer.echo("parasearch: interrupted", err=True)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:
        # Typer ships its own copy of click; recognise its exceptions by shape, not by import.
        names = {c.__name__ for c in type(exc).__mro__}
        if names & {"NoArgsIsHelp", "NoArgsIsHelpError"}:  # the help text has been printed already
            return 0
        if hasattr(exc, "format_message") and hasattr(exc, "exit_code"):
            typer.echo(f"parasearch: error: {exc.format_message()}", err=True)
            return int(exc.exit_code)
        if "Exit" in names and hasattr(exc, "exit_code"):
            return int(exc.exit_code)
        if "Abort" in names:
            typer.echo("parasearch: aborted", err=True)
            return 130
        if os.environ.get("PARASEARCH_DEBUG"):
            raise
        typer.echo(f"parasearch: internal error: {type(exc).__name__}: {exc} "
                   "(set PARASEARCH_DEBUG=1 for a traceback and please report it)", err=True)
        return 70


def entry() -> None:
    sys.exit(main())
