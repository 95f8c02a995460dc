"""Endpoints from Terraform: ``--from-terraform deploy/aws`` (or a saved outputs file).

What deploy/aws creates is read from ``terraform output -json`` and put into the spec,
so no one copies host names by hand: the RDS host, port and database, the pipeline's
least-privilege role logged into with IAM tokens (``rds_pipeline_user``; the master's
secret is for `dataferry db bootstrap` only), AWS's own DynamoDB endpoint and region,
and each DynamoDB table's real name (deploy/aws may add ``table_name_prefix``), the
ledger table's included. What the spec or the environment already sets explicitly
still wins for PostgreSQL (DATABASE_URL, a url, a password).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

from .errors import SpecError
from .spec import Spec

__all__ = ["OUTPUTS_READ", "apply_outputs", "read_outputs"]

# The outputs of deploy/aws this module reads (a deploy test holds outputs.tf to them).
OUTPUTS_READ = (
    "aws_region",
    "rds_endpoint",
    "rds_port",
    "rds_database",
    "rds_username",
    "rds_master_secret_arn",
    "rds_pipeline_user",
    "dynamodb_export_bucket",
    "dynamodb_table_names",
    "dynamodb_ledger_table",
)


def read_outputs(path: Path) -> dict[str, Any]:
    """Output name -> value, from a Terraform root module (runs ``terraform output -json``
    there: state access needed) or from a file holding that command's output."""
    if path.is_dir():
        terraform = shutil.which("terraform")
        if terraform is None:
            raise SpecError(
                f"--from-terraform {path}: terraform is not on PATH (or pass a file saved "
                "with `terraform output -json > outputs.json`)"
            )
        proc = subprocess.run(
            [terraform, f"-chdir={path}", "output", "-json"],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise SpecError(f"--from-terraform {path}: terraform output failed: {proc.stderr}")
        text = proc.stdout
    else:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as e:
            raise SpecError(f"--from-terraform {path}: {e.strerror}") from None
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as e:
        raise SpecError(f"--from-terraform {path}: not `terraform output -json`: {e}") from None
    if not isinstance(raw, dict):
        raise SpecError(f"--from-terraform {path}: not `terraform output -json`")
    # terraform output -json wraps each value: {"name": {"value": ..., "type": ..., ...}}
    return {
        k: v.get("value") if isinstance(v, dict) and "value" in v else v for k, v in raw.items()
    }


def apply_outputs(spec: Spec, outputs: dict[str, Any]) -> Spec:
    """The spec with the deployed endpoints and table names filled in."""
    stores = spec.stores
    pg = stores.postgres
    if outputs.get("rds_endpoint") and pg.url is None:
        update: dict[str, Any] = {
            "host": outputs["rds_endpoint"],
            "port": outputs.get("rds_port") or pg.port,
            "database": outputs.get("rds_database") or pg.database,
        }
        if outputs.get("rds_pipeline_user") and pg.password is None and not pg.password_secret:
            # The pipeline's least-privilege role (`dataferry db bootstrap`), logged into
            # with IAM tokens over verified TLS: the RDS CA bundle in PGSSLROOTCERT (the
            # image sets it) or stores.postgres.sslrootcert.
            update |= {
                "user": outputs["rds_pipeline_user"],
                "iam_auth": True,
                "region": pg.region or outputs.get("aws_region"),
                "sslmode": pg.sslmode or "verify-full",
            }
        else:  # a password given in the spec: its user, as before
            update |= {
                "user": pg.user or outputs.get("rds_username"),
                "password_secret": pg.password_secret or outputs.get("rds_master_secret_arn"),
                "sslmode": pg.sslmode or "require",
            }
        pg = pg.model_copy(update=update)
    ddb = stores.dynamodb
    names: dict[str, str] = outputs.get("dynamodb_table_names") or {}
    if names or outputs.get("dynamodb_ledger_table"):
        ddb = ddb.model_copy(
            update={
                "endpoint": "aws",
                "region": outputs.get("aws_region") or ddb.region,
                "ledger_table": outputs.get("dynamodb_ledger_table") or ddb.ledger_table,
                "export_bucket": ddb.export_bucket or outputs.get("dynamodb_export_bucket"),
            }
        )
    datasets = {}
    for name, ds in spec.datasets.items():
        real = names.get(ds.target.table) if ds.target.store == "dynamodb" else None
        if real and real != ds.target.table:
            ds = ds.model_copy(update={"target": ds.target.model_copy(update={"table": real})})
        datasets[name] = ds
    return spec.model_copy(
        update={
            "stores": stores.model_copy(update={"postgres": pg, "dynamodb": ddb}),
            "datasets": datasets,
        }
    )
