"""Filters of role mlflow_stack: the stack-wide decisions its plays make,
as plain Python with their own tests (tests/test_filter_plugins.py)."""

from __future__ import annotations

ANYONE = ["0.0.0.0/0", "::/0"]


def firewall_services(
    group_names: list[str],
    ports: dict[str, int],
    proxies: list[str],
    servers: list[str],
    s3_clients: list[str],
    external_s3: bool,
) -> list[dict]:
    """The services a host answers and who may reach each, from the groups it
    is in (playbooks/firewall.yml): a proxy answers http and https to anyone,
    an MLflow server its port to the proxies, the database its port to the
    servers, our S3 (none with an external one) its port to the servers and
    the direct-access clients. `ports`: http, https, mlflow, postgresql, s3."""
    services = []
    if "mlflow_proxy" in group_names:
        services += [
            {"name": "http", "port": ports["http"], "sources": ANYONE},
            {"name": "https", "port": ports["https"], "sources": ANYONE},
        ]
    if "mlflow_server" in group_names:
        services.append({"name": "mlflow", "port": ports["mlflow"], "sources": list(proxies)})
    if "mlflow_db" in group_names:
        services.append({"name": "postgresql", "port": ports["postgresql"], "sources": list(servers)})
    if "mlflow_artifacts" in group_names and not external_s3:
        services.append({"name": "s3", "port": ports["s3"], "sources": list(servers) + list(s3_clients)})
    return services


class FilterModule:
    def filters(self):
        return {"mlflow_stack_firewall_services": firewall_services}
