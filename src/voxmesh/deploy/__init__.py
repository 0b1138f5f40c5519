"""From one machine to a cluster: the Helm chart's values from a ``voxmesh up`` deployments
file (:mod:`voxmesh.deploy.values`), rendering the chart offline (:mod:`voxmesh.deploy.chart`)
and the ``voxmesh deploy`` command (:mod:`voxmesh.deploy.cli`)."""

from voxmesh.deploy.chart import ALL_API_VERSIONS, chart_defaults, chart_dir, render_manifests
from voxmesh.deploy.keda import desired_replicas, desired_replicas_many
from voxmesh.deploy.values import values_from_config, whole_percentages

__all__ = [
    "ALL_API_VERSIONS",
    "chart_defaults",
    "chart_dir",
    "desired_replicas",
    "desired_replicas_many",
    "render_manifests",
    "values_from_config",
    "whole_percentages",
]
