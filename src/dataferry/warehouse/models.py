"""The modelled layer: SELECTs kept as .sql files, run inside the warehouse (ELT).

A model's SQL names datasets and other models by their bare names; sqlglot parses it
(DuckDB's dialect, which reads as standard SQL), rewrites each name to the quoted table it
stands for, and writes the query in the warehouse's dialect, so one file serves DuckDB and
Snowflake. A dataset becomes its raw table minus the rows soft-deleted at the source.
Models run parents first (the order comes from the references), and each is checked
(primary key unique and not null, declared not-null columns, foreign keys resolve) before
it replaces the previous build.
"""

from __future__ import annotations

import graphlib
from dataclasses import dataclass, field

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError

from ..errors import SpecError
from ..spec import Model, Spec
from . import DELETED_AT
from .identifiers import ident, idents, table

__all__ = ["Check", "PlannedModel", "plan_models"]


@dataclass(frozen=True)
class Check:
    """A query counting violations, and what a violation means."""

    description: str
    sql: str


@dataclass
class PlannedModel:
    name: str
    schema: str
    sql: str  # the SELECT, in the warehouse's dialect
    file: str
    models: set[str] = field(default_factory=set)  # the models it reads
    datasets: set[str] = field(default_factory=set)  # the datasets it reads
    checks: list[Check] = field(default_factory=list)


def _parse(path: str, text: str) -> exp.Query:
    try:
        statements = [s for s in sqlglot.parse(text, read="duckdb") if s is not None]
    except ParseError as e:
        first = e.errors[0] if e.errors else {}
        where = f":{first['line']}" if first.get("line") else ""
        raise SpecError(f"{path}{where}: not valid SQL: {first.get('description', e)}") from None
    if len(statements) != 1 or not isinstance(statements[0], exp.Query):
        raise SpecError(f"{path}: a model file holds exactly one SELECT (a query, no DDL)")
    return statements[0]


def _rewrite(spec: Spec, name: str, path: str, tree: exp.Query) -> tuple[set[str], set[str]]:
    """Point bare dataset and model names at their tables; return (models, datasets) read."""
    ctes = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
    models: set[str] = set()
    datasets: set[str] = set()
    for node in list(tree.find_all(exp.Table)):
        ref = node.name
        if not node.db and ref in ctes:
            continue
        if node.db or ref not in {**spec.datasets, **spec.models.tables}:
            known = ", ".join(sorted([*spec.datasets, *spec.models.tables]))
            raise SpecError(
                f"{path}: model {name} reads {node.sql()}; name a dataset or a model "
                f"instead (known: {known})"
            )
        alias = exp.TableAlias(this=exp.to_identifier(node.alias_or_name, quoted=True))
        if ref in spec.models.tables:
            models.add(ref)
            node.replace(
                exp.Table(
                    this=exp.to_identifier(ref, quoted=True),
                    db=exp.to_identifier(spec.models.schema_, quoted=True),
                    alias=alias,
                )
            )
        else:
            datasets.add(ref)
            schema, raw = spec.raw_table(ref)
            live = (
                exp.select("*")
                .from_(exp.table_(raw, db=schema, quoted=True))
                .where(exp.column(DELETED_AT, quoted=True).is_(exp.null()))
            )
            node.replace(exp.Subquery(this=live, alias=alias))
    if name in models:
        raise SpecError(f"{path}: model {name} reads itself")
    return models, datasets


def _checks(spec: Spec, name: str, model: Model, target: str) -> list[Check]:
    checks = []
    if model.primary_key:
        keys = idents(model.primary_key)
        checks.append(
            Check(
                f"primary key ({', '.join(model.primary_key)}) repeats",
                f"SELECT count(*) FROM (SELECT {keys} FROM {target} "
                f"GROUP BY {keys} HAVING count(*) > 1) AS repeated",
            )
        )
    for col in dict.fromkeys([*model.primary_key, *model.not_null]):
        checks.append(
            Check(
                f"{col} is null",
                f"SELECT count(*) FROM {target} WHERE {ident(col)} IS NULL",
            )
        )
    for fk in model.foreign_keys:
        parent = table(spec.models.schema_, fk.references.model)
        on = " AND ".join(
            f"p.{ident(pc)} = c.{ident(cc)}"
            for cc, pc in zip(fk.columns, fk.references.columns, strict=True)
        )
        present = " AND ".join(f"c.{ident(cc)} IS NOT NULL" for cc in fk.columns)
        checks.append(
            Check(
                f"({', '.join(fk.columns)}) has no match in {fk.references.model}"
                f"({', '.join(fk.references.columns)})",
                f"SELECT count(*) FROM {target} AS c WHERE {present} AND NOT EXISTS "
                f"(SELECT 1 FROM {parent} AS p WHERE {on})",
            )
        )
    return checks


def plan_models(spec: Spec, dialect: str, staging_suffix: str) -> list[PlannedModel]:
    """Every model of the spec, parents first, its SQL in ``dialect``. Checks run against
    the freshly built ``<name><staging_suffix>`` table, before it replaces the old one."""
    planned: dict[str, PlannedModel] = {}
    for name, model in spec.models.tables.items():
        path = spec.resolve(model.sql)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as e:
            raise SpecError(
                f"{spec.path}: models.tables.{name}.sql: cannot read {path}: {e.strerror}"
            ) from None
        tree = _parse(str(path), text)
        models, datasets = _rewrite(spec, name, str(path), tree)
        staged = table(spec.models.schema_, name + staging_suffix)
        planned[name] = PlannedModel(
            name=name,
            schema=spec.models.schema_,
            sql=tree.sql(dialect=dialect),
            file=str(path),
            models=models,
            datasets=datasets,
            checks=_checks(spec, name, model, staged),
        )
    graph = {n: p.models for n, p in planned.items()}
    for n, model in spec.models.tables.items():
        graph[n] |= {fk.references.model for fk in model.foreign_keys} - {n}
    try:
        order = list(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as e:
        cycle = " -> ".join(e.args[1])
        raise SpecError(f"{spec.path}: models read each other in a cycle: {cycle}") from None
    return [planned[n] for n in order]
