"""The cluster recipes of docs/guide/clusters.md: the job scripts and pod specs they generate.

No Slurm, PBS or Kubernetes is reachable here; what can run is checked: the documented settings
are accepted by this dask-jobqueue / dask-kubernetes, and the workers they would start are
single-threaded with one XLA host device (a chunk is one compiled call that uses its cores).
``test_sweep_cluster.test_jobqueue_local_cluster`` runs the jobqueue path for real.
"""

from __future__ import annotations

import pytest

XLA = "--xla_force_host_platform_device_count=1"


@pytest.mark.parametrize("kind", ["SLURMCluster", "PBSCluster"])
def test_jobqueue_job_scripts(kind):
    jq = pytest.importorskip("dask_jobqueue")
    extra = {"PBSCluster": {"resource_spec": "select=1:ncpus=8:mem=32GB"}}.get(kind, {})
    cluster = getattr(jq, kind)(cores=8, processes=8, memory="32GB", walltime="02:00:00",
                                job_script_prologue=[f"export XLA_FLAGS={XLA}"],
                                scheduler_options={"host": "127.0.0.1", "dashboard_address": None},
                                **extra)
    try:
        script = cluster.job_script()
    finally:
        cluster.close()
    assert f"export XLA_FLAGS={XLA}" in script
    worker = next(line for line in script.splitlines() if "dask_worker" in line)
    assert cluster.scheduler_address in worker  # the workers find this scheduler
    assert "--nworkers 8" in worker and "--nthreads 1" in worker  # 8 single-threaded workers


def test_kubernetes_operator_spec():
    op = pytest.importorskip("dask_kubernetes.operator")
    spec = op.make_cluster_spec(name="ufm-sweep", image="registry.example.org/ufm:latest",
                                n_workers=16, resources={"requests": {"cpu": "1", "memory": "4Gi"}},
                                env={"XLA_FLAGS": XLA})
    container = spec["spec"]["worker"]["spec"]["containers"][0]
    container["args"] += ["--nthreads", "1"]
    assert spec["spec"]["worker"]["replicas"] == 16
    assert {"name": "XLA_FLAGS", "value": XLA} in container["env"]
    assert container["args"][0] in ("dask-worker", "dask") and container["args"][-2:] == ["--nthreads", "1"]
