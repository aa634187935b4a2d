#!/usr/bin/env python3
"""Prove an MLflow tracking server works end to end, through its front door.

Trains a real scikit-learn model (a small hyper-parameter search on the
breast-cancer data bundled with scikit-learn: no download) and checks, each
step timed: the server answers; without credentials (and with a wrong
password) the API answers 401; TLS is verified against the given CA; params,
per-step and final metrics, a feature-importance CSV and two plots are
logged; the model is logged with its signature and input example,
registered as a new version with an alias, loaded back through
models:/NAME@ALIAS and predicts exactly what the in-memory model predicts;
the artifacts download with the same checksums; a filtered search finds the
run.

Prints a table of checks, writes a JSON report, and exits non-zero naming
the failed step. Configuration: flags, or the standard MLFLOW_TRACKING_URI,
MLFLOW_TRACKING_USERNAME, MLFLOW_TRACKING_PASSWORD,
MLFLOW_TRACKING_SERVER_CERT_PATH and MLFLOW_TRACKING_INSECURE_TLS variables.

Needs: mlflow (or mlflow-skinny), scikit-learn, pandas, matplotlib, requests.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import socket
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import requests

API_PROBE = "/api/2.0/mlflow/experiments/search?max_results=1"


@dataclass
class Check:
    name: str
    ok: bool | None = None  # None: skipped (an earlier step failed)
    seconds: float = 0.0
    detail: str = ""


@dataclass
class Report:
    tracking_uri: str
    checks: list[Check] = field(default_factory=list)
    run_id: str = ""
    experiment_id: str = ""
    artifact_uri: str = ""
    model_name: str = ""
    model_version: str = ""

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    @property
    def failed(self) -> list[str]:
        return [c.name for c in self.checks if c.ok is False]


def parse_args(argv: list[str]) -> argparse.Namespace:
    env = os.environ.get
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--tracking-uri", default=env("MLFLOW_TRACKING_URI"), help="server URL (MLFLOW_TRACKING_URI)"
    )
    parser.add_argument(
        "--username", default=env("MLFLOW_TRACKING_USERNAME", ""), help="(MLFLOW_TRACKING_USERNAME)"
    )
    parser.add_argument(
        "--password", default=env("MLFLOW_TRACKING_PASSWORD", ""), help="(MLFLOW_TRACKING_PASSWORD)"
    )
    parser.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from standard input, verbatim (keeps it off command lines and environments)",
    )
    parser.add_argument(
        "--ca-cert", default=env("MLFLOW_TRACKING_SERVER_CERT_PATH", ""), help="CA bundle to verify TLS with"
    )
    parser.add_argument(
        "--insecure",
        action="store_true",
        default=env("MLFLOW_TRACKING_INSECURE_TLS", "").lower() in ("1", "true"),
        help="do not verify TLS (only when asked: the report says so)",
    )
    parser.add_argument(
        "--expect-auth",
        choices=["auto", "yes", "no"],
        default="auto",
        help="check that the API refuses requests without credentials (auto: when a username is given)",
    )
    parser.add_argument(
        "--resolve",
        action="append",
        default=[],
        metavar="HOST:ADDRESS",
        help="connect to ADDRESS for HOST (like curl --resolve; for names DNS does not know)",
    )
    parser.add_argument("--experiment", default="mlflow-vm-verification")
    parser.add_argument("--model-name", default="mlflow-vm-verification")
    parser.add_argument("--alias", default="verified")
    parser.add_argument("--report", default="mlflow-verify-report.json", help="where the JSON report goes")
    args = parser.parse_args(argv)
    if args.password_stdin:
        args.password = sys.stdin.read()
    if not args.tracking_uri:
        parser.error("no server: give --tracking-uri or set MLFLOW_TRACKING_URI")
    if urlsplit(args.tracking_uri).scheme not in ("http", "https"):
        parser.error(f"--tracking-uri {args.tracking_uri}: expected http:// or https://")
    if bool(args.username) != bool(args.password):
        parser.error("--username and --password go together")
    if args.ca_cert and not Path(args.ca_cert).is_file():
        parser.error(f"--ca-cert {args.ca_cert}: no such file")
    for item in args.resolve:
        if ":" not in item:
            parser.error(f"--resolve {item}: expected HOST:ADDRESS")
    return args


def install_resolve(entries: list[str]) -> None:
    """Send connections for the given host names to fixed addresses (TLS still checks the name)."""
    table = dict(item.split(":", 1) for item in entries)
    if not table:
        return
    original = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):
        return original(table.get(host, host), *args, **kwargs)

    socket.getaddrinfo = getaddrinfo


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class Verifier:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.url = args.tracking_uri.rstrip("/")
        self.report = Report(tracking_uri=self.url, model_name=args.model_name)
        self.verify: bool | str = False if args.insecure else (args.ca_cert or True)
        self.auth = (args.username, args.password) if args.username else None
        self.expect_auth = args.expect_auth == "yes" or (args.expect_auth == "auto" and bool(args.username))
        self.work = Path(tempfile.mkdtemp(prefix="mlflow-verify-"))
        self.state: dict = {}

    # -- running checks -------------------------------------------------------
    def step(self, name: str, action: Callable[[], str]) -> None:
        check = Check(name)
        self.report.checks.append(check)
        if self.report.failed:
            check.detail = "skipped: an earlier check failed"
            return
        start = time.monotonic()
        try:
            check.detail = action() or ""
            check.ok = True
        except Exception as error:  # every failure becomes a named, reported check
            check.ok = False
            check.detail = f"{type(error).__name__}: {error}".strip()[:1500]
            if os.environ.get("MLFLOW_VERIFY_DEBUG"):
                traceback.print_exc()
        check.seconds = round(time.monotonic() - start, 2)

    def http(self, path: str, auth=None) -> requests.Response:
        return requests.get(self.url + path, auth=auth, verify=self.verify, timeout=30)

    # -- the checks -----------------------------------------------------------
    def server_answers(self) -> str:
        response = self.http(API_PROBE, auth=self.auth)
        if response.status_code != 200:
            raise AssertionError(f"GET {API_PROBE} answered {response.status_code}: {response.text[:300]}")
        version = self.http("/version", auth=self.auth)
        return f"MLflow {version.text.strip()}" if version.status_code == 200 else "API answers"

    def tls(self) -> str:
        if urlsplit(self.url).scheme != "https":
            raise AssertionError("the server is not behind TLS (http://)")
        if self.args.insecure:
            return "NOT verified: --insecure was given"
        return f"certificate verified against {self.args.ca_cert or 'the system CA store'}"

    def auth_required(self) -> str:
        anonymous = self.http(API_PROBE).status_code
        wrong = self.http(API_PROBE, auth=(self.args.username, self.args.password + "-wrong")).status_code
        if (anonymous, wrong) != (401, 401):
            raise AssertionError(
                f"expected 401 without credentials and with a wrong password, got {anonymous}, {wrong}"
            )
        return "401 without credentials, 401 with a wrong password"

    def train_and_log(self) -> str:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import mlflow
        import pandas as pd
        from mlflow.models import infer_signature
        from sklearn.datasets import load_breast_cancer
        from sklearn.ensemble import RandomForestClassifier
        from sklearn.metrics import (
            ConfusionMatrixDisplay,
            RocCurveDisplay,
            accuracy_score,
            f1_score,
            roc_auc_score,
        )
        from sklearn.model_selection import GridSearchCV, train_test_split

        data = load_breast_cancer(as_frame=True)
        x_train, x_test, y_train, y_test = train_test_split(
            data.data, data.target, test_size=0.25, random_state=42, stratify=data.target
        )
        grid = {"n_estimators": [20, 50], "max_depth": [3, 6]}
        search = GridSearchCV(RandomForestClassifier(random_state=42), grid, cv=3, scoring="accuracy")
        search.fit(x_train, y_train)
        model = search.best_estimator_
        predictions = model.predict(x_test)
        metrics = {
            "accuracy": accuracy_score(y_test, predictions),
            "f1": f1_score(y_test, predictions),
            "roc_auc": roc_auc_score(y_test, model.predict_proba(x_test)[:, 1]),
        }

        files = {}
        importance = pd.DataFrame(
            {"feature": data.feature_names, "importance": model.feature_importances_}
        ).sort_values("importance", ascending=False)
        files["feature_importance.csv"] = self.work / "feature_importance.csv"
        importance.to_csv(files["feature_importance.csv"], index=False)
        for name, display in (
            ("confusion_matrix.png", ConfusionMatrixDisplay.from_predictions),
            ("roc_curve.png", RocCurveDisplay.from_predictions),
        ):
            figure, axes = plt.subplots(figsize=(5, 4))
            if name == "roc_curve.png":
                display(y_test, model.predict_proba(x_test)[:, 1], ax=axes)
            else:
                display(y_test, predictions, ax=axes)
            files[name] = self.work / name
            figure.savefig(files[name], dpi=80)
            plt.close(figure)

        mlflow.set_experiment(self.args.experiment)
        with mlflow.start_run(run_name="verification") as run:
            mlflow.log_params({**search.best_params_, "cv_folds": 3, "dataset": "breast_cancer"})
            for step, score in enumerate(search.cv_results_["mean_test_score"]):
                mlflow.log_metric("cv_accuracy", float(score), step=step)
            mlflow.log_metrics(metrics)
            for path in files.values():
                mlflow.log_artifact(str(path), artifact_path="evaluation")
            info = mlflow.sklearn.log_model(
                model,
                name="model",
                signature=infer_signature(x_test, predictions),
                input_example=x_test.head(5),
                # MLflow 3 saves scikit-learn models with skops, which trusts
                # only listed types: the forest's trees are our own.
                skops_trusted_types=["sklearn.tree._tree.Tree"],
            )
        self.report.run_id = run.info.run_id
        self.report.experiment_id = run.info.experiment_id
        self.report.artifact_uri = run.info.artifact_uri
        self.state.update(
            model=model,
            x_test=x_test,
            files=files,
            metrics=metrics,
            params=search.best_params_,
            model_uri=info.model_uri,
            steps=len(search.cv_results_["mean_test_score"]),
        )
        return (
            f"run {run.info.run_id}: accuracy {metrics['accuracy']:.3f}, {len(files)} artifacts, model logged"
        )

    def stored(self) -> str:
        import mlflow

        client = mlflow.MlflowClient()
        run = client.get_run(self.report.run_id)
        for key, value in self.state["params"].items():
            if run.data.params.get(key) != str(value):
                raise AssertionError(f"param {key}: stored {run.data.params.get(key)!r}, logged {value!r}")
        for key, value in self.state["metrics"].items():
            if abs(run.data.metrics.get(key, float("nan")) - value) > 1e-9:
                raise AssertionError(f"metric {key}: stored {run.data.metrics.get(key)}, logged {value}")
        history = client.get_metric_history(self.report.run_id, "cv_accuracy")
        if len(history) != self.state["steps"]:
            raise AssertionError(f"cv_accuracy has {len(history)} steps stored, {self.state['steps']} logged")
        return f"{len(run.data.params)} params, {len(run.data.metrics)} metrics, {len(history)} steps"

    def artifacts_intact(self) -> str:
        import mlflow

        target = self.work / "download"
        local = mlflow.artifacts.download_artifacts(
            run_id=self.report.run_id, artifact_path="evaluation", dst_path=str(target)
        )
        for name, path in self.state["files"].items():
            back = Path(local) / name
            if sha256(back) != sha256(path):
                raise AssertionError(f"{name}: checksum differs after the round trip")
        return f"{len(self.state['files'])} files, sha256 equal"

    def register(self) -> str:
        import mlflow

        version = mlflow.register_model(self.state["model_uri"], self.args.model_name)
        client = mlflow.MlflowClient()
        client.set_registered_model_alias(self.args.model_name, self.args.alias, version.version)
        self.report.model_version = str(version.version)
        return f"{self.args.model_name} version {version.version}, alias @{self.args.alias}"

    def load_and_predict(self) -> str:
        import mlflow
        import numpy as np

        uri = f"models:/{self.args.model_name}@{self.args.alias}"
        loaded = mlflow.pyfunc.load_model(uri)
        if str(loaded.metadata.run_id) != self.report.run_id:
            raise AssertionError(f"{uri} points at run {loaded.metadata.run_id}, not {self.report.run_id}")
        got = np.asarray(loaded.predict(self.state["x_test"]))
        want = self.state["model"].predict(self.state["x_test"])
        if not np.array_equal(got, want):
            raise AssertionError(f"{int((got != want).sum())} of {len(want)} predictions differ")
        return f"{uri}: {len(want)} predictions equal the in-memory model's"

    def search(self) -> str:
        import mlflow

        runs = mlflow.search_runs(
            experiment_names=[self.args.experiment],
            filter_string="metrics.accuracy > 0",
            output_format="list",
        )
        if self.report.run_id not in {r.info.run_id for r in runs}:
            raise AssertionError(f"'metrics.accuracy > 0' found {len(runs)} runs, not this one")
        return f"found among {len(runs)} runs"

    def run(self) -> Report:
        os.environ["MLFLOW_TRACKING_URI"] = self.url
        if self.auth:
            os.environ["MLFLOW_TRACKING_USERNAME"], os.environ["MLFLOW_TRACKING_PASSWORD"] = self.auth
        if self.args.insecure:
            os.environ["MLFLOW_TRACKING_INSECURE_TLS"] = "true"
        elif self.args.ca_cert:
            os.environ["MLFLOW_TRACKING_SERVER_CERT_PATH"] = self.args.ca_cert
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
        self.step("server answers", self.server_answers)
        if urlsplit(self.url).scheme == "https" or self.expect_auth:
            self.step("TLS verified", self.tls)
        if self.expect_auth:
            self.step("credentials required", self.auth_required)
        self.step("train and log run", self.train_and_log)
        self.step("params and metrics stored", self.stored)
        self.step("artifacts intact", self.artifacts_intact)
        self.step("model registered", self.register)
        self.step("model loads and predicts", self.load_and_predict)
        self.step("search finds the run", self.search)
        return self.report


def print_table(report: Report, out=sys.stdout) -> None:
    width = max(len(c.name) for c in report.checks)
    print(f"MLflow verification of {report.tracking_uri}", file=out)
    for check in report.checks:
        status = {True: "PASS", False: "FAIL", None: "SKIP"}[check.ok]
        print(f"  {status}  {check.name:<{width}}  {check.seconds:7.2f}s  {check.detail}", file=out)
    passed = sum(1 for c in report.checks if c.ok)
    verdict = "all checks passed" if report.ok else f"FAILED at: {', '.join(report.failed)}"
    print(f"{passed}/{len(report.checks)} checks passed; {verdict}", file=out)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    install_resolve(args.resolve)
    report = Verifier(args).run()
    print_table(report)
    Path(args.report).write_text(
        json.dumps({**asdict(report), "ok": report.ok, "failed": report.failed}, indent=2)
    )
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
